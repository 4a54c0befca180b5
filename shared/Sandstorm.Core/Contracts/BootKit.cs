namespace Sandstorm.Core.Contracts;

/// <summary>Answer of <c>GET /v1/bootkit/images</c>.</summary>
public sealed record BootKitImageList(IReadOnlyList<BootKitImage> Images);

/// <summary>A bootable image the tenant's agents run; <see cref="Reference"/> is what a bare-metal run names to pin it.</summary>
public sealed record BootKitImage(string Name, string Digest, string Reference, IReadOnlyList<BootKitImageAgent> Agents);

/// <summary>An agent booted from an image.</summary>
public sealed record BootKitImageAgent(string AgentId, string Name, string Region, bool Live, DateTimeOffset? LastHeartbeat);
