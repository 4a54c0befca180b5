using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;

namespace Sandstorm.Functions;

/// <summary>Lets a Functions HTTP trigger return the shared handlers' <see cref="IResult"/>.</summary>
public sealed class ResultActionResult(IResult result) : IActionResult
{
    public Task ExecuteResultAsync(ActionContext context) => result.ExecuteAsync(context.HttpContext);
}
