namespace Engine.Cli.Stress;

/// <summary>
/// The long-term pin a stress worker holds across operations: pages [<see cref="First"/>, +<see cref="Pages"/>) of
/// the shared anonymous region, pinned for write (device stores allowed) or read-only, released after
/// <see cref="RoundsLeft"/> more <see cref="StressOperation.PinLongTerm"/> operations.
/// </summary>
internal sealed class LongTermPin(PinnedPages pin, int first, int pages, bool writable, int rounds)
{
    public PinnedPages Pin => pin;

    public int First => first;

    public int Pages => pages;

    public bool Writable => writable;

    public int RoundsLeft { get; set; } = rounds;

    public bool Covers(int page) => page >= first && page < first + pages;
}
