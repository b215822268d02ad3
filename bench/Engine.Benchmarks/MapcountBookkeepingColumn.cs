using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Engine.Benchmarks;

/// <summary>
/// A summary column with the bytes of mapping bookkeeping per folio (and per page) of the case's scheme, for the folio
/// order its benchmark works on (<see cref="MapcountBenchmarks.FolioOrderOf"/>): <b>computed</b> by
/// <see cref="MapcountBookkeeping"/> from the fields each design keeps, not measured.
/// </summary>
public sealed class MapcountBookkeepingColumn : IColumn
{
    /// <inheritdoc />
    public string Id => nameof(MapcountBookkeepingColumn);

    /// <inheritdoc />
    public string ColumnName => "Bookkeeping/folio (computed)";

    /// <inheritdoc />
    public bool AlwaysShow => true;

    /// <inheritdoc />
    public ColumnCategory Category => ColumnCategory.Custom;

    /// <inheritdoc />
    public int PriorityInCategory => 1;

    /// <inheritdoc />
    public bool IsNumeric => false;

    /// <inheritdoc />
    public UnitType UnitType => UnitType.Dimensionless;

    /// <inheritdoc />
    public string Legend => "Bytes of mapping bookkeeping per folio (per 4 KiB page) of the order the benchmark works on, computed from the design's fields (MapcountBookkeeping), not measured";

    /// <inheritdoc />
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase)
        => MapcountRatioColumn.SchemeOf(benchmarkCase) is { } scheme
            ? MapcountBookkeeping.Describe(scheme, MapcountBenchmarks.FolioOrderOf(benchmarkCase.Descriptor.WorkloadMethod.Name))
            : "NA";

    /// <inheritdoc />
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) => GetValue(summary, benchmarkCase);

    /// <inheritdoc />
    public bool IsAvailable(Summary summary) => true;

    /// <inheritdoc />
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
}
