using Engine;

namespace Conformance;

/// <summary>
/// The memory one cow.c scenario runs on (<see cref="CowSelftestMemory"/>): its first address, its pages, and the
/// process, if any, that keeps part of it shared (the partially shared folio's child), which exits with the region.
/// </summary>
/// <param name="Mem">The first address.</param>
/// <param name="Pages">The pages the scenario covers: cow.c's <c>size</c>.</param>
/// <param name="Sharer">The child that keeps the folio's first page mapped, or null.</param>
/// <param name="InsideFolio">
/// The region is part of a large folio (a single PTE, a partially unmapped folio): an mprotect of the region cuts
/// through the folio.
/// </param>
internal sealed record CowSelftestRegion(ulong Mem, int Pages, Process? Sharer, bool InsideFolio) : IDisposable
{
    /// <summary>The region's length in bytes.</summary>
    public ulong Length => (ulong)Pages * CowSelftestScenarios.Page;

    /// <summary>Lets the sharing child exit.</summary>
    public void Dispose() => Sharer?.Dispose();
}
