using BenchmarkDotNet.Configs;

namespace Engine.Benchmarks;

/// <summary>
/// Configuration of <see cref="MapcountBenchmarks"/>: <see cref="FacadeConfig"/>'s environment (scheduling hook and
/// run-time checks off, added to whatever job is chosen), and the two columns that compare the schemes: the ratio to
/// <see cref="MapcountScheme.PerPage"/> (<see cref="MapcountRatioColumn"/>) and the computed bookkeeping per folio
/// (<see cref="MapcountBookkeepingColumn"/>).
/// </summary>
public sealed class MapcountConfig : ManualConfig
{
    /// <summary>Creates the configuration.</summary>
    public MapcountConfig()
    {
        Add(new FacadeConfig());
        AddColumn(new MapcountRatioColumn(), new MapcountBookkeepingColumn());
    }
}
