using System.Globalization;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Engine.Benchmarks;

/// <summary>
/// A summary column with each case's Mean divided by the Mean of the same benchmark, in the same job and with the same
/// other parameters, under <see cref="MapcountScheme.PerPage"/>: the ratio to the per-page design.
/// BenchmarkDotNet's own Ratio column compares methods (or jobs), and has no baseline for a [Params] value
/// (dotnet/BenchmarkDotNet#881), so <see cref="MapcountBenchmarks"/> reads its ratios here.
/// </summary>
public sealed class MapcountRatioColumn : IColumn
{
    /// <summary>The [Params] property that names the scheme.</summary>
    public const string Parameter = nameof(MapcountBenchmarks.Mapcount);

    /// <inheritdoc />
    public string Id => nameof(MapcountRatioColumn);

    /// <inheritdoc />
    public string ColumnName => "vs PerPage";

    /// <inheritdoc />
    public bool AlwaysShow => true;

    /// <inheritdoc />
    public ColumnCategory Category => ColumnCategory.Custom;

    /// <inheritdoc />
    public int PriorityInCategory => 0;

    /// <inheritdoc />
    public bool IsNumeric => true;

    /// <inheritdoc />
    public UnitType UnitType => UnitType.Dimensionless;

    /// <inheritdoc />
    public string Legend => "Mean / Mean of the same benchmark with Mapcount = PerPage (BenchmarkDotNet has no baseline for a [Params] value)";

    /// <inheritdoc />
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase)
    {
        var mean = summary[benchmarkCase]?.ResultStatistics?.Mean;
        var baseline = summary.BenchmarksCases.FirstOrDefault(c => IsBaselineOf(c, benchmarkCase));
        var baseMean = baseline is null ? null : summary[baseline]?.ResultStatistics?.Mean;
        if (mean is null || baseMean is null || baseMean <= 0)
        {
            return "NA";
        }

        return (mean.Value / baseMean.Value).ToString("0.00", CultureInfo.InvariantCulture);
    }

    /// <inheritdoc />
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) => GetValue(summary, benchmarkCase);

    /// <inheritdoc />
    public bool IsAvailable(Summary summary) => true;

    /// <inheritdoc />
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

    /// <summary>The scheme of <paramref name="benchmarkCase"/>, or null when it has no such parameter.</summary>
    public static MapcountScheme? SchemeOf(BenchmarkCase benchmarkCase)
        => benchmarkCase.Parameters.Items.FirstOrDefault(p => p.Name == Parameter)?.Value is MapcountScheme scheme ? scheme : null;

    private static bool IsBaselineOf(BenchmarkCase candidate, BenchmarkCase of)
    {
        if (candidate.Descriptor != of.Descriptor || candidate.Job.DisplayInfo != of.Job.DisplayInfo || SchemeOf(candidate) != MapcountScheme.PerPage)
        {
            return false;
        }

        foreach (var parameter in of.Parameters.Items)
        {
            if (parameter.Name != Parameter && !Equals(candidate.Parameters[parameter.Name], parameter.Value))
            {
                return false;
            }
        }

        return true;
    }
}
