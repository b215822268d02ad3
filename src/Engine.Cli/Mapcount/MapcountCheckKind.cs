namespace Engine.Cli.Mapcount;

/// <summary>What a <see cref="MapcountCheck"/> runs.</summary>
internal enum MapcountCheckKind
{
    /// <summary>A zoo entry's scenario with its knob off: is its race still there?</summary>
    ZooBuggy,

    /// <summary>A zoo entry's scenario with the fix: does it still hold?</summary>
    ZooFixed,

    /// <summary>A row of cow.c's base-page table (base pages, swapped-out base pages, the zero page, file pages).</summary>
    CowBasePage,

    /// <summary>A row of cow.c's large-folio table, at one folio order.</summary>
    CowLargeFolio,

    /// <summary>A large-folio race scenario under the tester.</summary>
    Race,

    /// <summary>A stress run with large folios.</summary>
    Stress,
}
