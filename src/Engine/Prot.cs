namespace Engine;

/// <summary>Memory protection of a mapping.</summary>
[Flags]
public enum Prot
{
    /// <summary>No access.</summary>
    None = 0,
    /// <summary>Readable.</summary>
    Read = 1,
    /// <summary>Writable (implies nothing about readability, as in Linux; the model allows reads of write-only mappings).</summary>
    Write = 2,
    /// <summary>Readable and writable.</summary>
    ReadWrite = Read | Write,
}
