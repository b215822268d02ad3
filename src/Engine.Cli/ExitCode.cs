namespace Engine.Cli;

/// <summary>
/// The exit codes of the <c>engine</c> command. Each means one thing, for every command and either scheduler; README
/// and <c>engine --help</c> list them.
/// </summary>
public static class ExitCode
{
    /// <summary>
    /// The run passed: no bug (<c>test</c>, <c>stress</c>), the schedule ran to its end without one (<c>replay</c>), or
    /// every claim held (<c>zoo</c>, <c>classics</c> and <c>compare</c>, where finding the buggy versions' bugs is the
    /// point), or every cell was what its expectation says (<c>mapcount</c>, where a documented unsoundness is a result).
    /// </summary>
    public const int Passed = 0;

    /// <summary>
    /// A bug was found (<c>test</c>) or reproduced (<c>replay</c>), the stress run failed, or a claim of <c>zoo</c>,
    /// <c>classics</c> or <c>compare</c> failed, or a cell of <c>mapcount</c> differs from its expectation.
    /// </summary>
    public const int Failed = 1;

    /// <summary>
    /// The input was wrong (an unknown option, a bad number, a missing or unreadable file, a corrupt trace or replay
    /// string, an assembly that is not .NET, an output path that cannot be written), or the run explored nothing (every
    /// iteration cut at the step bound; a stress run too short for its oracles), or a stress run's swap proved too small
    /// for its working set (memory and swap both full, every check held). One line on stderr, before any work whenever
    /// it can be known then.
    /// </summary>
    public const int Usage = 2;

    /// <summary>A replay diverged: the program no longer follows the recorded schedule.</summary>
    public const int Diverged = 3;

    /// <summary>The program itself failed (a bug of ours, not of the input): the message keeps its stack trace.</summary>
    public const int InternalError = 4;

    /// <summary>The exit codes as <c>--help</c> and README state them.</summary>
    public const string Summary =
        "Exit codes: 0 passed (for zoo, classics and compare: every claim held; for mapcount: every cell as expected); 1 a bug " +
        "was found or reproduced, the stress run failed, a claim failed, or a mapcount cell differs from its expectation; 2 the input was wrong (one line on stderr, before any work) or the run explored " +
        "nothing; 3 a replay diverged from its schedule; 4 an internal error of this program (with its stack trace).";
}
