namespace Engine.Cli.Mapcount;

/// <summary>One line of <see cref="MapcountExpectations"/>: under <paramref name="Design"/>, <paramref name="Check"/> finds <paramref name="Expected"/>, because <paramref name="Why"/>.</summary>
/// <param name="Design">The design's command-line name (<c>tri-state</c>).</param>
/// <param name="Check">The check.</param>
/// <param name="Expected">What it finds.</param>
/// <param name="Why">Why, in a few words, with where the documentation says so.</param>
internal sealed record MapcountExpectation(string Design, MapcountCheck Check, CheckOutcome Expected, string Why);
