namespace Engine.Cli.Stress;

/// <summary>Settings of an <c>engine stress</c> run.</summary>
internal sealed record StressOptions(TimeSpan Duration, int Cpus, int Seed, int Frames, PteLayout Layout, string? JsonPath);
