using BugZoo;
using ClassicBugs;

namespace Engine.Cli.Discovery;

/// <summary>
/// The scenarios this program runs itself (the bug zoo and the classic bugs), found again by the test name their runs
/// write into traces, so <c>engine replay</c> needs no assembly for them: <c>&lt;entry&gt;-buggy</c>,
/// <c>&lt;entry&gt;-fixed</c>, <c>&lt;classic&gt;-buggy</c>, <c>&lt;classic&gt;-correct</c>.
/// </summary>
internal static class KnownScenarios
{
    /// <summary>The body recorded under <paramref name="testName"/>, or null when it is none of this program's.</summary>
    public static Action? Find(string? testName)
    {
        if (testName is null)
        {
            return null;
        }

        foreach (var entry in BugZooCatalog.All)
        {
            if (testName == entry.Name + "-buggy")
            {
                return entry.Buggy;
            }

            if (testName == entry.Name + "-fixed")
            {
                return entry.Fixed(null);
            }
        }

        foreach (var bug in ClassicBugCatalog.All)
        {
            if (testName == bug.Name + "-buggy")
            {
                return bug.Buggy;
            }

            if (testName == bug.Name + "-correct")
            {
                return bug.Correct;
            }
        }

        return null;
    }
}
