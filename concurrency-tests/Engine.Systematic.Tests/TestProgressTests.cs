using System.Reflection;
using System.Text.Json;
using Engine.TestProgress;

namespace Engine.Systematic.Tests;

/// <summary>
/// The progress lines <c>dotnet test</c> prints while an assembly runs (issue 13): what a line says, that one comes
/// every interval and none after the run, and that this assembly is set up to print them.
/// </summary>
public sealed class TestProgressTests
{
    [Fact]
    public void ALineCountsFinishedAndFailedTestCasesAndNamesTheRunningOne()
    {
        var reporter = new ProgressReporter(total: 3, write: _ => { }, interval: TimeSpan.FromHours(1));
        reporter.Start();
        reporter.TestCaseStarted("A.First");
        reporter.TestCaseFinished();
        reporter.TestCaseStarted("A.Second");
        reporter.TestFailed();
        reporter.TestCaseFinished();
        reporter.TestCaseStarted("B.Third");

        var line = reporter.Line();
        reporter.Stop();

        Assert.Matches(@"^progress: 2 of 3 test cases done, 1 failed, \d+ s elapsed; running B\.Third \(\d+ s\)$", line);
        // .ci/run adds up "Failed: F, Passed: P" from dotnet test's output: a progress line must never look like one.
        Assert.DoesNotMatch("Failed: *[0-9]+, Passed: *[0-9]+", line);
    }

    [Fact]
    public void AFirstLineAtStartThenOneEveryIntervalAndNoneAfterStop()
    {
        var lines = new List<string>();
        var reporter = new ProgressReporter(total: 1, write: l => { lock (lines) { lines.Add(l); } }, interval: TimeSpan.FromMilliseconds(20));
        reporter.Start();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (Count() < 3 && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(10);
        }

        reporter.Stop();
        var atStop = Count();
        Thread.Sleep(100);

        Assert.True(atStop >= 3, $"{atStop} line(s) in 30 s at one per 20 ms");
        Assert.Equal(atStop, Count());
        Assert.Equal("progress: 1 test cases to run, a line every 0.02 s", lines[0]);
        Assert.All(lines.Skip(1), l => Assert.StartsWith("progress: 0 of 1 test cases done, 0 failed, ", l, StringComparison.Ordinal));

        int Count()
        {
            lock (lines)
            {
                return lines.Count;
            }
        }
    }

    [Fact]
    public void TheDefaultIntervalLeavesTheConsoleSilentForLessThanThirtySeconds()
        => Assert.InRange(ProgressReporter.DefaultInterval, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(20));

    /// <summary>
    /// concurrency-tests/Directory.Build.props gives every test project the framework and the runner settings; this
    /// assembly stands for all three (each is a test project in that folder, which the next check makes sure of).
    /// </summary>
    [Fact]
    public void ThisAssemblyRunsUnderTheProgressFrameworkWithDiagnosticMessagesOn()
    {
        var framework = typeof(TestProgressTests).Assembly.GetCustomAttributesData()
            .Single(a => a.AttributeType == typeof(TestFrameworkAttribute));
        Assert.Equal(typeof(ProgressTestFramework).FullName, framework.ConstructorArguments[0].Value);
        Assert.Equal(typeof(TestProgressTests).Assembly.GetName().Name, framework.ConstructorArguments[1].Value);

        using var settings = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "xunit.runner.json")));
        Assert.True(settings.RootElement.GetProperty("diagnosticMessages").GetBoolean(), "the adapter drops diagnostic messages, and with them the progress lines");
    }

    [Fact]
    public void EveryProjectUnderConcurrencyTestsIsATestProject()
    {
        var tests = Path.Combine(RepositoryRoot(), "concurrency-tests");
        var projects = Directory.GetFiles(tests, "*.csproj", SearchOption.AllDirectories);

        Assert.True(projects.Length >= 3, $"only {projects.Length} projects under {tests}");
        Assert.All(projects, p => Assert.Contains("<IsTestProject>true</IsTestProject>", File.ReadAllText(p), StringComparison.Ordinal));
        Assert.Contains("Engine.TestProgress.ProgressTestFramework", File.ReadAllText(Path.Combine(tests, "Directory.Build.props")), StringComparison.Ordinal);
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
