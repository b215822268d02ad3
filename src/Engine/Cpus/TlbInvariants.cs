using System.Globalization;
using Engine.Invariants;
using Engine.Memory;
using Engine.PageTables;

namespace Engine.Cpus;

/// <summary>
/// The TLBs' invariant, checked at quiescence for <c>Machine.CheckInvariants</c>: every TLB entry belongs to a live mm
/// and agrees with the entry that maps its address (a present entry, the same pfn, not writable where the entry is
/// read-only), and no TLB entry points at a free frame. Nothing here is a scheduling point.
/// </summary>
internal sealed class TlbInvariants(CpuContext[] cpus, Memmap memmap)
{
    /// <summary>
    /// Checks every CPU's TLB against the live mms (<paramref name="liveMms"/>, by id) and the entries a walk of their
    /// tables found (<paramref name="translations"/>, by mm id and virtual page number).
    /// </summary>
    public void Check(HashSet<int> liveMms, Dictionary<(int Mm, ulong Vpn), Pte> translations, List<InvariantViolation> violations)
    {
        foreach (var cpu in cpus)
        {
            foreach (var (mm, vpn, pfn, writable, _) in cpu.Tlb.Entries())
            {
                var address = vpn << PhysicalMemory.PageShift;
                var where = Format($"CPU {cpu.Id}: TLB entry for pid {mm} at 0x{address:x} -> pfn 0x{pfn:x}");
                if (!liveMms.Contains(mm))
                {
                    violations.Add(Stale(cpu.Id, mm, address, pfn, where + " belongs to an exited process"));
                }
                else if (!translations.TryGetValue((mm, vpn), out var pte) || !pte.IsPresent)
                {
                    violations.Add(Stale(cpu.Id, mm, address, pfn, where + " is stale: no present entry maps that address"));
                }
                else if (pte.Pfn != pfn)
                {
                    violations.Add(Stale(cpu.Id, mm, address, pfn, where + Format($" is stale: the entry maps pfn 0x{pte.Pfn:x}")));
                }
                else if (writable && !pte.IsWrite)
                {
                    violations.Add(Stale(cpu.Id, mm, address, pfn, where + " is writable but the entry is read-only"));
                }

                if (memmap.Contains(pfn) && memmap.PageCount(pfn) == 0)
                {
                    violations.Add(Stale(cpu.Id, mm, address, pfn, where + " points at a free frame"));
                }
            }
        }
    }

    private static InvariantViolation Stale(int cpu, int mm, ulong address, long pfn, string message)
        => new(ViolationKind.StaleTlbEntry, message) { Cpu = cpu, Pid = mm, Address = address, Pfn = pfn };

    private static string Format(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
