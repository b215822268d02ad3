namespace Engine.Cli.Stress;

/// <summary>
/// What the stress workers do. <see cref="General"/> is the checked mix of everything (<see cref="StressWorker"/>);
/// the others are targeted mixes (<see cref="HuntWorker"/>): the operations of one protocol knob's race, on a few
/// pages, on every CPU, each with the oracle that sees that knob's bug.
/// </summary>
internal enum StressMix
{
    /// <summary>Every operation, spread over 64 pages per worker.</summary>
    General,

    /// <summary>Stores through cached translations against madvise(DONTNEED) of the same two pages: <c>FlushBeforeFree</c> and <c>NestedTlbFlush</c>.</summary>
    Tlb,

    /// <summary>Stores to a shared file mapping through dirty translations against zaps of its range and writeback: <c>DelayRmap</c> and <c>FlushDirtyUnderPtl</c>.</summary>
    LostDirty,

    /// <summary>Long-term write pins (GUP-fast first) against fork of a small process, then stores the pin must see: <c>GupFastForkSeq</c>.</summary>
    PinFork,

    /// <summary>Long-term read-only pins against fork of a small process, then stores the pin must see: <c>UnshareOnReadOnlyPin</c>.</summary>
    ReadOnlyPinFork,

    /// <summary>Lockless (GUP-fast) reads of entries against zaps and faults of the same two pages, on <c>SplitPae</c>: <c>LocklessPteRetry</c>.</summary>
    TornPte,

    /// <summary>
    /// Direct I/O through GUP write references, stores through cached translations and mprotect, on two pages of each
    /// CPU's own mapping, against a kswapd that reclaims them again and again: <c>FreezeBeforeDirtyTest</c> and
    /// <c>FlushTlbBatchedPending</c>.
    /// </summary>
    Reclaim,
}

/// <summary>Names of the mixes on the command line, and the mix each knob selects.</summary>
internal static class StressMixes
{
    /// <summary>The command-line names, in <see cref="StressMix"/> order.</summary>
    public static readonly IReadOnlyDictionary<string, StressMix> Names = new Dictionary<string, StressMix>(StringComparer.OrdinalIgnoreCase)
    {
        ["general"] = StressMix.General,
        ["tlb"] = StressMix.Tlb,
        ["lost-dirty"] = StressMix.LostDirty,
        ["pin-fork"] = StressMix.PinFork,
        ["ro-pin-fork"] = StressMix.ReadOnlyPinFork,
        ["torn-pte"] = StressMix.TornPte,
        ["reclaim"] = StressMix.Reclaim,
    };

    /// <summary>The command-line name of <paramref name="mix"/>.</summary>
    public static string Name(StressMix mix) => Names.First(p => p.Value == mix).Key;

    /// <summary>The targeted mix that runs <paramref name="knob"/>'s race.</summary>
    public static StressMix For(string knob) => knob switch
    {
        nameof(MachineOptions.FlushBeforeFree) or nameof(MachineOptions.NestedTlbFlush) => StressMix.Tlb,
        nameof(MachineOptions.DelayRmap) or nameof(MachineOptions.FlushDirtyUnderPtl) => StressMix.LostDirty,
        nameof(MachineOptions.GupFastForkSeq) => StressMix.PinFork,
        nameof(MachineOptions.UnshareOnReadOnlyPin) => StressMix.ReadOnlyPinFork,
        nameof(MachineOptions.LocklessPteRetry) => StressMix.TornPte,
        nameof(MachineOptions.FreezeBeforeDirtyTest) or nameof(MachineOptions.FlushTlbBatchedPending) => StressMix.Reclaim,
        _ => StressMix.General,
    };

    /// <summary>
    /// Whether a <c>stress</c> command line asks for perturbation, read from the raw arguments before anything touches
    /// <c>Engine.Sync</c> (Program.cs enables the scheduling hook only then): <c>--perturb on|off</c> when given, else on
    /// exactly when the mix is targeted, that is <c>--mix</c> names one, or <c>--mix</c> is absent (or <c>auto</c>) and
    /// <c>--disable</c> names a knob. A malformed line answers as best it can; the parser then rejects it.
    /// </summary>
    public static bool WantsPerturbation(IReadOnlyList<string> args)
    {
        string? perturb = null, mix = null;
        var disables = false;
        for (var i = 0; i < args.Count; i++)
        {
            var (name, value) = Split(args[i], i + 1 < args.Count ? args[i + 1] : null);
            switch (name)
            {
                case "--perturb":
                    perturb = value;
                    break;
                case "--mix":
                    mix = value;
                    break;
                case "--disable":
                    disables |= value is not null && !value.StartsWith('-');
                    break;
            }
        }

        if (perturb is not null && !perturb.Equals("auto", StringComparison.OrdinalIgnoreCase))
        {
            return perturb.Equals("on", StringComparison.OrdinalIgnoreCase);
        }

        return mix is null || mix.Equals("auto", StringComparison.OrdinalIgnoreCase) ? disables : !mix.Equals("general", StringComparison.OrdinalIgnoreCase);
    }

    private static (string Name, string? Value) Split(string arg, string? next)
    {
        var at = arg.IndexOfAny(['=', ':']);
        return arg.StartsWith("--", StringComparison.Ordinal) && at > 0 ? (arg[..at], arg[(at + 1)..]) : (arg, next);
    }
}
