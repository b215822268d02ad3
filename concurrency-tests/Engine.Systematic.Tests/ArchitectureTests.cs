using Engine.Systematic.Tests.Architecture;
using Xunit.Abstractions;

namespace Engine.Systematic.Tests;

/// <summary>
/// The engine's subsystems form a DAG (docs/design.md, "Subsystems and their dependencies"): read from the compiled
/// Engine.dll with Mono.Cecil, every reference between two of its namespaces goes down <see cref="Layers"/>, a subsystem
/// uses from the root namespace only its vocabulary, and no subsystem takes the machine.
/// </summary>
public sealed class ArchitectureTests(ITestOutputHelper output)
{
    /// <summary>
    /// The engine's namespaces, bottom to top: the single place to edit when a namespace is added (Engine.Swap,
    /// Engine.Reclaim, ...). A namespace references only namespaces strictly below it; Engine.Sync and the BCL are
    /// always allowed. The last two are the top: the root (the façade and composition root) and the public test
    /// surface, which may use the root; rules 2 and 3 do not bind them. A listed namespace need not exist yet.
    /// </summary>
    internal static readonly IReadOnlyList<Layer> Layers =
    [
        Layer.Subsystem("Engine.Stats"),
        Layer.Subsystem("Engine.Invariants"),
        Layer.Subsystem("Engine.Memory"),
        Layer.Subsystem("Engine.Policy"),
        Layer.Subsystem("Engine.PageTables"),
        Layer.Subsystem("Engine.Cpus"),
        Layer.Subsystem("Engine.Files"),
        Layer.Subsystem("Engine.Swap"),
        Layer.Subsystem("Engine.Mm"),
        Layer.Subsystem("Engine.Rmap"),
        Layer.Subsystem("Engine.Folios"),
        Layer.Subsystem("Engine.Zap"),
        Layer.Subsystem("Engine.Faults"),
        Layer.Subsystem("Engine.Writeback"),
        Layer.Subsystem("Engine.Reclaim"),
        Layer.Subsystem("Engine.Truncate"),
        Layer.Subsystem("Engine.Gup"),
        Layer.Subsystem("Engine.AddressSpace"),
        Layer.Top("Engine"),
        Layer.Top("Engine.Testing"),
    ];

    /// <summary>Rule 2's vocabulary beyond the root's public enums and exception types, which are vocabulary by kind.</summary>
    internal static readonly IReadOnlyList<string> VocabularyClasses = ["MachineOptions"];

    private static readonly LayerRules EngineRules = new("Engine", Layers, VocabularyClasses, "Engine.Machine");

    private static string EngineAssembly => typeof(global::Engine.Machine).Assembly.Location;

    [Fact]
    public void EngineSubsystemDependenciesFormTheLayeredDag()
    {
        var result = DependencyAnalysis.Analyse(EngineAssembly, EngineRules);
        foreach (var (from, to) in result.NamespaceEdges)
        {
            output.WriteLine($"{from} -> {to}");
        }

        // Vacuity guard: the analysis read the restructured engine, sees references at all, and sees each namespace use
        // or be used by another.
        Assert.True(result.Namespaces.Count >= 15, $"only {result.Namespaces.Count} namespaces in {EngineAssembly}: {string.Join(", ", result.Namespaces)}");
        Assert.Contains(("Engine.Faults", "Engine.Memory"), result.NamespaceEdges);
        var connected = result.NamespaceEdges.SelectMany(e => new[] { e.From, e.To }).ToHashSet(StringComparer.Ordinal);
        Assert.All(result.Namespaces, ns => Assert.Contains(ns, connected));
        Assert.True(result.ForeignTypes.Count == 0, $"types outside the Engine namespace: {string.Join(", ", result.ForeignTypes)}");

        Assert.True(result.IsClean, $"{EngineAssembly} breaks the layering:{Environment.NewLine}{result.Describe()}");
    }

    [Fact]
    public void TheRootVocabularyIsTheOptionsTheEnumsAndTheExceptions()
    {
        var result = DependencyAnalysis.Analyse(EngineAssembly, EngineRules);

        // What the kinds give today; a new public enum or exception in the root joins by itself, no class does.
        string[] today = ["MachineOptions", "CowReuse", "PteLayout", "Prot", "MapFlags", "GupFlags", "SegmentationFault", "SegmentationFaultReason", "OutOfFramesException", "InvariantViolationException"];
        Assert.Superset(today.Select(n => $"Engine.{n}").ToHashSet(StringComparer.Ordinal), result.RootVocabulary.ToHashSet(StringComparer.Ordinal));
        string[] classes = ["Machine", "Process", "Cpu", "BackingFile", "PinnedPages", "PageReferences", "GupHandle", "MachineInvariants", "ProcessTable", "MachineStats"];
        Assert.Empty(classes.Select(n => $"Engine.{n}").Intersect(result.RootVocabulary, StringComparer.Ordinal));
    }

    [Fact]
    public void TheAnalysisFindsEveryKindOfHiddenReference()
    {
        var result = DependencyAnalysis.Analyse(typeof(ArchitectureTests).Assembly.Location, FixtureRules);
        output.WriteLine(result.Describe());

        const string bottom = "Engine.Systematic.Tests.Architecture.Fixture.Bottom.";
        const string upper = "Engine.Systematic.Tests.Architecture.Fixture.Upper.";
        const string root = "Engine.Systematic.Tests.Architecture.Fixture.";
        string[] upward =
        [
            "ViaBaseType -> Widget", "ViaInterface -> IUpperMarker", "ViaField -> Widget", "ViaProperty -> Widget",
            "ViaParameter -> Widget", "ViaGenericArgument -> Widget", "ViaConstraint`1 -> IUpperMarker",
            "ViaCallInBody -> Widget", "ViaTypeof -> Widget", "ViaGenericMethodArgument -> Widget", "ViaClosure -> Widget",
            "ViaIterator -> Widget", "ViaAttributeArgument -> Widget", "ViaNestedType -> Widget",
        ];
        var expected = upward.Select(e => e.Split(" -> ")).Select(p => (1, $"{bottom}{p[0]}", $"{upper}{p[1]}"))
            .Append((2, $"{bottom}TakesHub", $"{root}Hub"))
            .Append((2, $"{bottom}ViaVocabulary", $"{root}WidgetFault"))
            .Append((2, $"{bottom}ViaVocabularyToHub", $"{root}HubGone"))
            .OrderBy(e => e.ToString(), StringComparer.Ordinal)
            .ToList();
        var found = result.EdgeViolations.Select(v => (v.Rule, v.First.Source, v.First.Target)).OrderBy(e => e.ToString(), StringComparer.Ordinal).ToList();
        Assert.Equal(expected, found);

        // Compiler-generated code counts as the method that wrote it, and says where it is.
        Assert.Contains("<>c__DisplayClass", Via(result, "ViaClosure"), StringComparison.Ordinal);
        Assert.Contains("<Run>d__", Via(result, "ViaIterator"), StringComparison.Ordinal);
        Assert.Contains("call Widget::Make", Via(result, "ViaCallInBody"), StringComparison.Ordinal);
        Assert.Contains("Inner", Via(result, "ViaNestedType"), StringComparison.Ordinal);

        // Rule 3 names each member that takes the composer; the vocabulary and the downward interface are fine.
        var takesHub = result.ComposerViolations.Select(v => v.First.Via).ToList();
        Assert.Contains(takesHub, v => v.Contains(".ctor parameter hub", StringComparison.Ordinal));
        Assert.Contains(takesHub, v => v.Contains("property Hub", StringComparison.Ordinal));
        Assert.All(result.ComposerViolations, v => Assert.Equal($"{bottom}TakesHub", v.First.Source));
        Assert.Equal([$"{root}HubFault", $"{root}HubGone", $"{root}HubOptions", $"{root}Mode", $"{root}WidgetFault"], result.RootVocabulary);

        // Vocabulary that reaches above its user, or reaches a root class, would close a cycle: named with the way round.
        Assert.Contains($"reaches {upper}Widget via property Culprit", Via(result, "ViaVocabulary"), StringComparison.Ordinal);
        Assert.Contains($"reaches {root}Hub via", Via(result, "ViaVocabularyToHub"), StringComparison.Ordinal);

        // The namespace the list forgot.
        Assert.Equal([$"{root}Stray"], result.UnlistedNamespaces.Keys);
        Assert.Contains($"{root}Stray (types: Lost)", result.Describe(), StringComparison.Ordinal);
    }

    [Fact]
    public void AWrongLayerOrderIsReportedEdgeByEdge()
    {
        var reversed = EngineRules with { Layers = [.. Layers.Where(l => l.IsSubsystem).Reverse(), .. Layers.Where(l => !l.IsSubsystem)] };

        var result = DependencyAnalysis.Analyse(EngineAssembly, reversed);

        Assert.Contains(result.EdgeViolations, v => v.Rule == 1 && v.First.Source == "Engine.Faults.FaultHandler" && v.First.TargetNamespace == "Engine.Memory");
        Assert.Contains("Engine.Faults.FaultHandler -> Engine.Memory.", result.Describe(), StringComparison.Ordinal);
    }

    [Fact]
    public void ANamespaceMissingFromTheListIsNamed()
    {
        var result = DependencyAnalysis.Analyse(EngineAssembly, EngineRules with { Layers = [.. Layers.Where(l => l.Namespace != "Engine.Zap")] });

        Assert.False(result.IsClean);
        Assert.Equal(["Engine.Zap"], result.UnlistedNamespaces.Keys);
        Assert.Contains("Namespaces not in the layer list", result.Describe(), StringComparison.Ordinal);
    }

    private static LayerRules FixtureRules => new(
        "Engine.Systematic.Tests.Architecture.Fixture",
        [
            Layer.Subsystem("Engine.Systematic.Tests.Architecture.Fixture.Bottom"),
            Layer.Subsystem("Engine.Systematic.Tests.Architecture.Fixture.Upper"),
            Layer.Top("Engine.Systematic.Tests.Architecture.Fixture"),
        ],
        ["HubOptions"],
        "Engine.Systematic.Tests.Architecture.Fixture.Hub");

    private static string Via(AnalysisResult result, string source)
        => Assert.Single(result.EdgeViolations, v => v.First.Source.EndsWith($".{source}", StringComparison.Ordinal)).First.Via;
}
