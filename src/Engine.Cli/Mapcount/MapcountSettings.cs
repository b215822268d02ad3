namespace Engine.Cli.Mapcount;

/// <summary>The settings of an <c>engine mapcount</c> run, checked by the command before any work.</summary>
/// <param name="Designs">The designs to compare, in the table's order.</param>
/// <param name="Seeds">Seeds per zoo entry for the buggy scenario (<c>--seeds</c>): <paramref name="Seed"/> onwards.</param>
/// <param name="Budget">Schedules allowed to find each buggy scenario's race, per seed (<c>--budget</c>).</param>
/// <param name="FixedIterations">Schedules each fixed zoo scenario runs (<c>--fixed-iterations</c>).</param>
/// <param name="RaceIterations">Schedules each large-folio race runs (<c>--race-iterations</c>).</param>
/// <param name="StressSeconds">Length of each design's stress run (<c>--stress-seconds</c>).</param>
/// <param name="Seed">The first seed of the buggy runs, the seed of the fixed, race and stress runs (<c>--seed</c>).</param>
/// <param name="Parallel">Schedules of the fixed and race runs run at once (<c>--parallel</c>).</param>
internal sealed record MapcountSettings(IReadOnlyList<MapcountDesign> Designs, int Seeds, int Budget, int FixedIterations, int RaceIterations, double StressSeconds, int Seed, int Parallel)
{
    /// <summary>The stress run's CPUs: one worker thread each.</summary>
    public const int StressCpus = 2;

    /// <summary>The stress run's frames: enough for two CPUs with folios of <see cref="StressFolioOrder"/>.</summary>
    public const int StressFrames = 2048;

    /// <summary>The stress run's folio order: 16 KiB folios.</summary>
    public const int StressFolioOrder = 2;

    /// <summary>The stress run of <paramref name="design"/>: the general mix with large folios under the design's scheme.</summary>
    public Stress.StressOptions StressOptions(MapcountDesign design) => new(
        TimeSpan.FromSeconds(StressSeconds), StressCpus, Seed, StressFrames, PteLayout.Native64, JsonPath: null, Disabled: [],
        AnonFolioOrder: StressFolioOrder, Mapcount: design.Scheme);
}
