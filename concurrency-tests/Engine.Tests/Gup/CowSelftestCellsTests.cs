using Conformance;

namespace Engine.Tests.Gup;

/// <summary>
/// <see cref="CowSelftestCells"/>, the cell runner <c>engine mapcount</c> plays cow.c's table with, agrees with the
/// tables of CowSelftestTests and CowSelftestLargeFolioTests: their AnonExclusive columns pass under both shipped
/// schemes, a cell the table says fails fails with its check, and what goes wrong around a scenario is the cell's
/// problem, not an exception.
/// </summary>
public sealed class CowSelftestCellsTests
{
    [Theory]
    [InlineData(MapcountScheme.PerPage)]
    [InlineData(MapcountScheme.MmId)]
    public void EveryRowOfTheAnonExclusiveColumnPasses(MapcountScheme scheme)
    {
        var options = CowSelftestScenarios.Options(CowGeneration.AnonExclusive, mapcount: scheme);
        var cells = CowSelftestScenarios.All.Select(s => CowSelftestCells.RunBasePage(s.Name, options))
            .Concat(CowSelftestScenarios.LargeFolioMemories.SelectMany(m => CowSelftestScenarios.AnonymousScenarios
                .Select(s => CowSelftestCells.RunLargeFolio(s, m, options with { AnonFolioOrder = 2 }))))
            .ToList();

        Assert.Equal(36 + 60, cells.Count);
        Assert.All(cells, c => Assert.True(c.Passed, $"{c.Row}: {c}"));
        Assert.Contains(cells, c => c.Row == "vmsplice + unmap in child on partially shared");
    }

    [Fact]
    public void ACellTheTableSaysFailsFailsWithItsCheck()
    {
        var cell = CowSelftestCells.RunLargeFolio("vmsplice + unmap in child", CowSelftestMemory.PteMappedFolio,
            CowSelftestScenarios.Options(CowGeneration.MapCount, folioOrder: 2));

        Assert.False(cell.Passed);
        Assert.Null(cell.Problem);
        Assert.Equal([CowSelftestCheck.NoLeakFromParentIntoChild], cell.Outcome!.FailedChecks);
        Assert.StartsWith("FAIL (NoLeakFromParentIntoChild: the child's pipe reads", cell.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void APreparationThatCannotRunIsTheCellsProblem()
    {
        // A large-folio runner on a machine without large folios: the preparation refuses, and the cell says why.
        var cell = CowSelftestCells.RunLargeFolio("basic COW after fork", CowSelftestMemory.SinglePteOfFolio, CowSelftestScenarios.Options(CowGeneration.AnonExclusive));

        Assert.False(cell.Passed);
        Assert.Null(cell.Outcome);
        Assert.Equal("ConformanceException: SinglePteOfFolio needs a machine with large anonymous folios", cell.Problem);
    }
}
