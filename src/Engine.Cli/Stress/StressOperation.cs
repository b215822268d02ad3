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
    FileRead,
    FileWrite,
    FilePrivate,
    FileZap,
    FileSync,
    Evict,
}
