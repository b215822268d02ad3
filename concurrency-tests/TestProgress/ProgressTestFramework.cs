using System.Reflection;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace Engine.TestProgress;

/// <summary>
/// xunit's own test framework, plus a progress line at least every <see cref="ProgressReporter.DefaultInterval"/>
/// while the assembly's tests run: <c>dotnet test</c> shows nothing between "A total of 1 test files matched" and an
/// assembly's summary, and Engine.Tests takes minutes. Every test project under <c>concurrency-tests/</c> names this
/// type in <c>[assembly: TestFramework]</c> (concurrency-tests/Directory.Build.props); the lines travel as xunit
/// diagnostic messages, which the VSTest adapter prints at the console's default (minimal) verbosity when
/// <c>diagnosticMessages</c> is on (concurrency-tests/xunit.runner.json), without touching the summary lines.
/// </summary>
public sealed class ProgressTestFramework(IMessageSink messageSink) : XunitTestFramework(messageSink)
{
    /// <inheritdoc/>
    protected override ITestFrameworkExecutor CreateExecutor(AssemblyName assemblyName)
        => new Executor(assemblyName, SourceInformationProvider, DiagnosticMessageSink);

    private sealed class Executor(AssemblyName assemblyName, ISourceInformationProvider sourceInformationProvider, IMessageSink diagnosticMessageSink)
        : XunitTestFrameworkExecutor(assemblyName, sourceInformationProvider, diagnosticMessageSink)
    {
        protected override void RunTestCases(IEnumerable<IXunitTestCase> testCases, IMessageSink executionMessageSink, ITestFrameworkExecutionOptions executionOptions)
        {
            var cases = testCases as IReadOnlyCollection<IXunitTestCase> ?? testCases.ToList();
            var reporter = new ProgressReporter(cases.Count, line => DiagnosticMessageSink.OnMessage(new DiagnosticMessage(line)));
            base.RunTestCases(cases, new ProgressMessageSink(executionMessageSink, reporter), executionOptions);
        }
    }

    /// <summary>Passes every message on, and tells the reporter when the run starts and ends and what each test case does.</summary>
    private sealed class ProgressMessageSink(IMessageSink inner, ProgressReporter reporter) : LongLivedMarshalByRefObject, IMessageSink
    {
        public bool OnMessage(IMessageSinkMessage message)
        {
            switch (message)
            {
                case ITestAssemblyStarting:
                    reporter.Start();
                    break;
                case ITestCaseStarting starting:
                    reporter.TestCaseStarted(starting.TestCase.DisplayName);
                    break;
                case ITestFailed:
                    reporter.TestFailed();
                    break;
                case ITestCaseFinished:
                    reporter.TestCaseFinished();
                    break;
                case ITestAssemblyFinished:
                    reporter.Stop();
                    break;
            }

            return inner.OnMessage(message);
        }
    }
}
