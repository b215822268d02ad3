namespace Engine.Cli.Stress;

/// <summary>The kinds of operation a stress worker performs.</summary>
internal enum StressOperation
{
    Read,
    Write,
    FreshRegion,
    Mprotect,
    Madvise,
    Fork,
}
