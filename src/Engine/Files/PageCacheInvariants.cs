using System.Globalization;
using Engine.Invariants;
using Engine.Memory;
using Engine.Sync;

namespace Engine.Files;

/// <summary>
/// The page cache's invariants, checked at quiescence for <c>Machine.CheckInvariants</c>. Every cached page is live,
/// not anonymous and not a table, cached once, its descriptor naming its file and index, held by the cache (and, when
/// unmapped, by nothing else but GUP handles), unlocked and not under writeback, tagged dirty when dirty, and, when
/// clean, identical to its backing store. Nothing here is a scheduling point.
/// </summary>
internal sealed class PageCacheInvariants(Memmap memmap, PhysicalMemory memory)
{
    /// <summary>
    /// Checks every page of <paramref name="cache"/> (the cache of <paramref name="file"/>, as violations name it) and
    /// adds the cached pfns to <paramref name="cached"/>. <paramref name="mappings"/> is the census of entries per pfn.
    /// </summary>
    public void Check(PageCache cache, string file, HashSet<long> cached, IReadOnlyDictionary<long, int> mappings, List<InvariantViolation> violations)
    {
        for (var index = 0; index < cache.Pages; index++)
        {
            var pfn = cache.Peek(index);
            if (pfn < 0)
            {
                continue;
            }

            var where = Format($"{file} page {index} (pfn 0x{pfn:x})");
            if (!memmap.Contains(pfn))
            {
                violations.Add(Corrupt(pfn, where + " is outside physical memory"));
                continue;
            }

            if (!cached.Add(pfn))
            {
                violations.Add(Corrupt(pfn, where + " is cached twice"));
            }

            var flags = memmap.GetFlags(pfn);
            ref var page = ref memmap.Page(pfn);
            if (memmap.PageCount(pfn) == 0)
            {
                violations.Add(Corrupt(pfn, where + " is free while in the page cache"));
            }
            else if (mappings.GetValueOrDefault(pfn) == 0 && memmap.PageCount(pfn) != 1 + memmap.GupHeld(pfn).Refs)
            {
                violations.Add(new InvariantViolation(ViolationKind.RefcountMismatch, where + Format($" is unmapped but has refcount {memmap.PageCount(pfn)}; only the cache and {memmap.GupHeld(pfn).Refs} GUP references hold it"))
                {
                    Pfn = pfn,
                    Expected = 1 + memmap.GupHeld(pfn).Refs,
                    Actual = memmap.PageCount(pfn),
                });
            }

            if ((flags & (PageFlags.Anon | PageFlags.PageTable)) != 0 || Atomic.Read(ref page.Mapping) != cache.MappingId || Atomic.Read(ref page.Index) != index)
            {
                violations.Add(Corrupt(pfn, where + Format($" has flags {flags}, mapping {Atomic.Read(ref page.Mapping)}, index {Atomic.Read(ref page.Index)}")));
            }

            if ((flags & (PageFlags.Locked | PageFlags.Writeback)) != 0)
            {
                violations.Add(Corrupt(pfn, where + Format($" is {flags & (PageFlags.Locked | PageFlags.Writeback)} at quiescence")));
            }

            if ((flags & PageFlags.Dirty) != 0 && !cache.IsTaggedDirty(index))
            {
                violations.Add(Corrupt(pfn, where + " is dirty but not in its file's dirty set"));
            }

            // The backing-store invariant in the form quiescence can check: a page is clean only once it has been
            // copied out, and a store after that must have dirtied it again (write-notify), so a clean page holds
            // exactly what the backing store holds. A store that reached a clean page unnoticed (the lost-dirty
            // race) breaks this before any eviction can hide it.
            if ((flags & (PageFlags.Dirty | PageFlags.Writeback)) == 0)
            {
                var contents = memory.Frame(pfn);
                var stored = cache.Store.Page(index);
                var word = contents.CommonPrefixLength(stored);
                if (word < contents.Length)
                {
                    violations.Add(new InvariantViolation(ViolationKind.CleanPageDiffers, where + Format($" is clean but differs from the backing store at word {word} (0x{contents[word]:x} cached, 0x{stored[word]:x} stored): a store reached it without dirtying it"))
                    {
                        Pfn = pfn,
                        Expected = unchecked((long)stored[word]),
                        Actual = unchecked((long)contents[word]),
                    });
                }
            }
        }
    }

    private static InvariantViolation Corrupt(long pfn, string message) => new(ViolationKind.PageCacheCorrupt, message) { Pfn = pfn };

    private static string Format(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
