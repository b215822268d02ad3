using Engine.Systematic;

namespace ClassicBugs;

/// <summary>A textbook concurrency bug in a buggy and a correct version, both built only from Engine.Sync.</summary>
/// <param name="Name">Short name, used on the command line and in tables.</param>
/// <param name="Description">What goes wrong in the buggy version and what the correct one does instead.</param>
/// <param name="Expected">The kind of bug the tester must report for the buggy version.</param>
/// <param name="Buggy">The buggy test body.</param>
/// <param name="Correct">The correct test body.</param>
public sealed record ClassicBug(string Name, string Description, BugKind Expected, Action Buggy, Action Correct);
