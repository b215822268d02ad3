namespace Engine;

/// <summary>Kind of mapping.</summary>
[Flags]
public enum MapFlags
{
    /// <summary>Copy-on-write private mapping.</summary>
    Private = 1,
    /// <summary>Shared mapping (anonymous shared memory and file mappings come with the page-cache issue).</summary>
    Shared = 2,
    /// <summary>Not backed by a file.</summary>
    Anonymous = 4,
}
