namespace Engine.Gup;

/// <summary>The protocol knobs GUP reads (each documented on <see cref="MachineOptions"/>), taken once from the machine's options.</summary>
internal readonly record struct GupKnobs(bool GupFastForkSeq, bool GupFastRecheck, bool RefcountOverflowGuard, bool ForceWriteCowCheck)
{
    public static GupKnobs From(MachineOptions options)
        => new(options.GupFastForkSeq, options.GupFastRecheck, options.RefcountOverflowGuard, options.ForceWriteCowCheck);
}
