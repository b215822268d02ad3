namespace Engine.AddressSpace;

/// <summary>Fork's test knobs (each documented on <see cref="MachineOptions"/>), taken once from the machine's options.</summary>
internal readonly record struct ForkKnobs(bool LinksAnonVmaBeforeCopy, bool FlushesParentTlb)
{
    public static ForkKnobs From(MachineOptions options) => new(options.ForkLinksAnonVmaBeforeCopy, options.ForkFlushesParentTlb);
}
