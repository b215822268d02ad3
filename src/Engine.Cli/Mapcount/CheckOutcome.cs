namespace Engine.Cli.Mapcount;

/// <summary>What a check of <c>engine mapcount</c> found under one design; an expectation is one of these too.</summary>
internal enum CheckOutcome
{
    /// <summary>The property holds: a fixed scenario, a cow.c row, a race test or the stress run passed.</summary>
    Passes,

    /// <summary>
    /// The property is broken: a fixed scenario or a race test found a bug, a cow.c row failed, the stress run failed.
    /// Under a design, an unsoundness (a leak, a lost store, a wrong "shared" answer): the report is printed.
    /// </summary>
    Fails,

    /// <summary>
    /// No bug, but the run proved nothing: a fixed scenario never met an interleaving it names, a race's vacuity guard
    /// failed, schedules were cut at the step bound, or the stress run was too short for its oracles. A larger budget
    /// may tell.
    /// </summary>
    Vacuous,

    /// <summary>
    /// A cow.c row or the stress run passed, but a frame or a swap slot stayed held after every process had exited
    /// until reclaim gave it back: the design's word could not tell eviction or <c>free_swap_cache</c> that nothing
    /// mapped the page (a false positive), and reclaim's exact rmap walk could. A cost of the design, not a leak.
    /// </summary>
    HeldUntilReclaim,

    /// <summary>A zoo entry's buggy scenario found its race, for at least one seed.</summary>
    Found,

    /// <summary>A zoo entry's buggy scenario found nothing, for every seed: the design closes the race (within the budget).</summary>
    Closed,

    /// <summary>A zoo entry's buggy scenario found a bug of another kind than its entry's: the design brought one in.</summary>
    WrongBug,

    /// <summary>The design cannot run with the check's settings (MM ids, tri-state and none need the AnonExclusive rule).</summary>
    NotApplicable,
}
