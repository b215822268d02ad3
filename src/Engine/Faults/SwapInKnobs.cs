namespace Engine.Faults;

/// <summary>The swap-in settings <c>do_swap_page</c> reads (each documented on <see cref="MachineOptions"/>), taken once from the machine's options.</summary>
internal readonly record struct SwapInKnobs(bool SynchronousDevice, bool ClaimWhenSkippingCache)
{
    public static SwapInKnobs From(MachineOptions options)
        => new(options.SynchronousSwapDevice, options.SwapcachePrepareWhenSkipping);
}
