using Sandstorm.Providers.Cloud;

namespace Sandstorm.Providers.Modal;

/// <summary>Modal settings (<c>Sandstorm:Providers:Modal</c>). Modal authenticates with a token id and secret.</summary>
public sealed class ModalOptions : CloudProviderOptions
{
    public const string Section = "Sandstorm:Providers:Modal";

    public ModalOptions()
    {
        BaseUrl = new Uri("https://api.modal.com");
    }

    public string? TokenId { get; set; }

    public string? TokenSecret { get; set; }

    /// <summary>App the sandboxes belong to (created if missing).</summary>
    public string AppName { get; set; } = "sandstorm";

    public string Environment { get; set; } = "";

    /// <summary>Registry image sandboxes start from.</summary>
    public string Image { get; set; } = "python:3.12-slim";

    public string WorkDir { get; set; } = "/sandstorm";

    /// <summary>Client version sent as x-modal-client-version; Modal refuses clients it considers too old.</summary>
    public string ClientVersion { get; set; } = "1.0.0";

    /// <summary>How long to wait for the sandbox's task to be scheduled (polled, not retried).</summary>
    public TimeSpan StartTimeout { get; set; } = TimeSpan.FromSeconds(60);

    public TimeSpan StartPollInterval { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// How long the server may hold one read of an execution's output (its long-poll). A read that has not answered within
    /// this plus <see cref="Cloud.CloudProviderOptions.RequestTimeout"/> is stuck: it is cut and resumed from the last batch.
    /// </summary>
    public TimeSpan OutputPollTimeout { get; set; } = TimeSpan.FromSeconds(55);

    public override bool IsConfigured =>
        Enabled && BaseUrl is not null && !string.IsNullOrWhiteSpace(TokenId) && !string.IsNullOrWhiteSpace(TokenSecret);
}
