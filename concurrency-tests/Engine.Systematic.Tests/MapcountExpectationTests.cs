using Conformance;
using Engine.Cli.Mapcount;
using static Engine.Cli.Mapcount.CheckOutcome;
using static Engine.Cli.Mapcount.MapcountCheck;

namespace Engine.Systematic.Tests;

/// <summary>
/// <c>engine mapcount</c>'s expectation table (docs/mapcount.md) is sound: every line names a design, a check that
/// design runs, and an outcome that check can have, once; and its mistakes are named.
/// </summary>
public sealed class MapcountExpectationTests
{
    [Fact]
    public void TheDocumentedTableHasNoMistake()
        => Assert.Empty(MapcountExpectations.Documented.Problems(MapcountRunner.Applies));

    [Fact]
    public void EachKindOfMistakeIsNamed()
    {
        var table = new MapcountExpectations(
        [
            new("tri-sate", ZooBuggy("lost-dirty"), Closed, "a typo in the design"),
            new("none", ZooBuggy("lost-dirt"), Closed, "a typo in the entry"),
            new("none", CowLargeFolio("basic COW after fork", CowSelftestMemory.PteMappedFolio, 3), Fails, "an order the table does not run"),
            new("none", ZooFixed("lost-dirty"), Closed, "an outcome a fixed run cannot have"),
            new("mm-id", ZooBuggy("missed-cow"), Found, "MM ids cannot run the mapcount rule"),
            new("none", Race("mm-id-slots"), Fails, "a race that exists under MM ids only"),
            new("none", Stress, Fails, "once"),
            new("none", Stress, Passes, "twice"),
        ]);

        var problems = table.Problems(MapcountRunner.Applies).ToList();

        Assert.Equal(7, problems.Count);
        Assert.Contains(problems, p => p.StartsWith("tri-sate: no such design", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("none: no check zoo lost-dirt, knob off", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("none: no check cow.c \"basic COW after fork on PTE-mapped\" (order 3)", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("none: zoo lost-dirty, with the fix cannot find Closed", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("mm-id: zoo missed-cow, knob off does not run under this design", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("none: race mm-id-slots does not run under this design", StringComparison.Ordinal));
        Assert.Contains("none: stress is listed 2 times", problems);
    }

    [Fact]
    public void AnUnlistedCheckFindsItsDefaultAndAListedOneWhatItsLineSays()
    {
        var documented = MapcountExpectations.Documented;
        Assert.Equal(Found, documented.Expected("tri-state", ZooBuggy("lost-dirty")));
        Assert.Equal(Passes, documented.Expected("none", ZooFixed("lost-dirty")));
        Assert.Equal(Passes, documented.Expected("none", CowBasePage("basic COW after fork")));
        Assert.Equal(Closed, documented.Expected("mm-id", ZooBuggy("estimated-sharers-reuse")));
        Assert.Equal(Found, documented.Expected("per-page", ZooBuggy("estimated-sharers-reuse")));
        Assert.NotNull(documented.Why("mm-id", ZooBuggy("estimated-sharers-reuse")));
    }

    /// <summary>
    /// The designs that need the AnonExclusive rule cannot run the zoo's scenarios of older rules (n/a, not run under
    /// per-page mapcounts instead); seed 002's proposals keep no count for entry 17's reuse by the per-page estimate;
    /// per-page runs every scenario; the MM-id slots' race exists under MM ids only.
    /// </summary>
    [Fact]
    public void WhatEachDesignCannotRun()
    {
        foreach (var design in MapcountDesign.All)
        {
            var skipped = MapcountCheck.All.Where(c => !MapcountRunner.Applies(design, c)).Select(c => c.ToString()).ToList();
            string[] walkRaces = design.Scheme == MapcountScheme.TriState ? [] : ["race walk-vs-read-fault", "race walk-vs-unlocked-read-fault"];
            string[] expected = design.Scheme == MapcountScheme.PerPage
                ? ["race mm-id-slots", .. walkRaces]
                : ["zoo missed-cow, knob off", "zoo wrong-cow, knob off", "zoo swap-missed-cow, knob off", "zoo swap-missed-cow, with the fix",
                   "zoo swap-lost-write, knob off", "zoo reclaim-pinned, knob off", "zoo reclaim-pinned, with the fix",
                   .. design.Scheme == MapcountScheme.MmId ? Array.Empty<string>() : ["zoo estimated-sharers-reuse, knob off"],
                   .. design.Scheme == MapcountScheme.MmId ? Array.Empty<string>() : ["race mm-id-slots"],
                   .. walkRaces];
            Assert.Equal(expected, skipped);
        }
    }
}
