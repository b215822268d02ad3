using System.Text.RegularExpressions;

namespace Engine.Systematic.Tests;

/// <summary>
/// The product (everything under <c>src/</c>) stands on its own: the tests depend on it, never the reverse; and what
/// README.md tells a reader to run after its two commands names files and methods that exist.
/// </summary>
public sealed class RepositoryStructureTests
{
    [Fact]
    public void NoProjectUnderSrcReferencesTheTestTree()
    {
        var root = RepositoryRoot();
        var projects = Directory.EnumerateFiles(Path.Combine(root, "src"), "*.csproj", SearchOption.AllDirectories)
            .Where(p => !p.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .ToList();

        // Vacuity guard: the engine, its primitives, both schedulers, the scenarios and the CLI were all read.
        Assert.True(projects.Count >= 7, $"only {projects.Count} projects found under {root}/src");
        Assert.DoesNotContain(projects, p => File.ReadAllText(p).Contains("concurrency-tests", StringComparison.Ordinal));
    }

    /// <summary>
    /// The product runs without a test framework: the scenarios the CLI shares with the tests (src/Conformance, src/BugZoo)
    /// state their checks with the tester's <c>Specification</c> or their own exceptions, never xunit's.
    /// </summary>
    [Fact]
    public void NoProjectUnderSrcReferencesATestFramework()
    {
        var root = RepositoryRoot();
        var sources = Directory.EnumerateFiles(Path.Combine(root, "src"), "*.*", SearchOption.AllDirectories)
            .Where(p => p.EndsWith(".csproj", StringComparison.Ordinal) || p.EndsWith(".cs", StringComparison.Ordinal))
            .Where(p => !p.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                        && !p.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .ToList();

        // Vacuity guard: the shared scenarios were read.
        Assert.Contains(sources, p => p.EndsWith(Path.Combine("Conformance", "Conformance.csproj"), StringComparison.Ordinal));
        foreach (var reference in new[] { "Include=\"xunit", "Include=\"Microsoft.NET.Test.Sdk", "Include=\"NUnit", "Include=\"MSTest", "using Xunit", "Xunit.", "using NUnit" })
        {
            Assert.DoesNotContain(sources, p => File.ReadAllText(p).Contains(reference, StringComparison.Ordinal));
        }
    }

    /// <summary>
    /// Every <c>…/bin/Release/net10.0/X.dll</c> the README names is where <c>dotnet build -c Release</c> of a project
    /// of the repository puts its assembly: the project exists, is called X, targets that framework and moves no
    /// output elsewhere.
    /// </summary>
    [Fact]
    public void EveryBuildOutputTheReadmeNamesIsWhereTheBuildPutsIt()
    {
        var root = RepositoryRoot();
        var readme = File.ReadAllText(Path.Combine(root, "README.md"));
        var framework = Regex.Match(File.ReadAllText(Path.Combine(root, "Directory.Build.props")), "<TargetFramework>([^<]+)</TargetFramework>").Groups[1].Value;
        var outputs = Regex.Matches(readme, @"(?<dir>(?:src|concurrency-tests)/(?<project>[\w.]+))/bin/(?<config>\w+)/(?<tfm>[\w.]+)/(?<assembly>[\w.]+)\.dll");

        Assert.True(outputs.Count >= 2, "the README names no build output of Engine.Tests and ClassicBugs");
        foreach (Match output in outputs)
        {
            var project = Path.Combine(root, output.Groups["dir"].Value, output.Groups["project"].Value + ".csproj");
            Assert.True(File.Exists(project), $"{output.Value}: no project {project}");
            Assert.Equal(output.Groups["project"].Value, output.Groups["assembly"].Value);
            Assert.Equal("Release", output.Groups["config"].Value);
            Assert.Equal(framework, output.Groups["tfm"].Value);
            var text = File.ReadAllText(project);
            foreach (var moved in new[] { "<AssemblyName>", "<TargetFramework", "<OutputPath>", "<BaseOutputPath>", "<ArtifactsPath>", "<UseArtifactsOutput>" })
            {
                Assert.DoesNotContain(moved, text, StringComparison.Ordinal);
            }
        }

        foreach (var props in Directory.EnumerateFiles(root, "Directory.Build.*", SearchOption.AllDirectories))
        {
            var text = File.ReadAllText(props);
            Assert.DoesNotContain("<OutputPath>", text, StringComparison.Ordinal);
            Assert.DoesNotContain("<ArtifactsPath>", text, StringComparison.Ordinal);
            Assert.DoesNotContain("<UseArtifactsOutput>", text, StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// The README's <c>test … --method M</c> example names a <c>[SystematicTest]</c> of EngineRaceScenarios that is
    /// known to be buggy (it says exit code 1), and its fixed counterpart one that is not (exit code 0).
    /// </summary>
    [Fact]
    public void TheReadmesTestExampleNamesAKnownBugAndItsFix()
    {
        var root = RepositoryRoot();
        var readme = File.ReadAllText(Path.Combine(root, "README.md"));
        var scenarios = File.ReadAllText(Path.Combine(root, "concurrency-tests", "Engine.Tests", "EngineRaceScenarios.cs"));

        var example = Regex.Match(readme, @"dotnet run --project src/Engine\.Cli -c Release -- test concurrency-tests/Engine\.Tests/\S+\.dll --method (\w+)\n```\s+[^`]*?exits with 1;\s+`--method (\w+)`[^`]*?exits with 0");
        Assert.True(example.Success, "README.md has no `-- test …Engine.Tests.dll --method M` example with its exit codes");
        Assert.Matches(@"\[SystematicTest\(ExpectBug = true\)\]\s+public static void " + example.Groups[1].Value + @"\(\)", scenarios);
        Assert.Matches(@"\[SystematicTest\]\s+public static void " + example.Groups[2].Value + @"\(\)", scenarios);
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Engine.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"Engine.sln not found above {AppContext.BaseDirectory}.");
    }
}
