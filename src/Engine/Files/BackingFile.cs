using Engine.Mm;

namespace Engine;

/// <summary>
/// A file with a backing store (the "disk") and a page cache in front of it. Created by
/// <see cref="Machine.CreateFile"/>; mapped with <see cref="Process.Mmap(ulong, Prot, MapFlags, BackingFile, long)"/>.
/// The backing store holds what survives eviction: it changes only when <see cref="Machine.Writeback"/> copies a
/// dirty page-cache page out.
/// </summary>
public sealed class BackingFile
{
    internal BackingFile(Machine machine, Inode inode)
    {
        Machine = machine;
        Inode = inode;
    }

    /// <summary>The file's name.</summary>
    public string Name => Inode.Name;

    /// <summary>The file's size in bytes (<see cref="Machine.Truncate"/> changes it).</summary>
    public long Size => Inode.Size;

    /// <summary>
    /// The largest size <see cref="Machine.Truncate"/> can give the file: its size at creation rounded up to whole
    /// pages (the page cache and the backing store are sized once).
    /// </summary>
    public long MaxSize => Inode.Store.MaxSize;

    /// <summary>
    /// The 64-bit word the backing store holds at <paramref name="offset"/> (8-byte aligned, inside the file): what
    /// a reader would find after every cached page was dropped.
    /// </summary>
    public ulong ReadStored(long offset)
    {
        if (offset < 0 || offset >= Size || (offset & 7) != 0)
        {
            throw new ArgumentException($"Offset {offset} is not an 8-byte aligned offset inside '{Name}' ({Size} bytes).", nameof(offset));
        }

        return Inode.Store.ReadWord(offset);
    }

    /// <inheritdoc/>
    public override string ToString() => Inode.ToString();

    /// <summary>The machine the file belongs to.</summary>
    internal Machine Machine { get; }

    /// <summary>Pages the file can span (its capacity, <see cref="MaxSize"/> in pages).</summary>
    internal int Pages => Inode.Pages;

    /// <summary>The inode of <paramref name="file"/>, which must belong to <paramref name="machine"/> (<see cref="ArgumentException"/> otherwise).</summary>
    internal static Inode InodeOf(BackingFile file, Machine machine)
    {
        ArgumentNullException.ThrowIfNull(file);
        return file.Machine == machine ? file.Inode : throw new ArgumentException($"{file} belongs to another machine.", nameof(file));
    }

    /// <summary>The file as the engine sees it: backing store, page cache, i_mmap.</summary>
    internal Inode Inode { get; }
}
