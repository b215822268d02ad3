using System.CommandLine;
using Engine.Cli.Commands;
using Engine.Sync;

// The scheduling hook must be switched on before any Engine.Sync primitive is touched: SchedulingHook.IsEnabled is
// a static readonly field, fixed when the type is first used (and folded away by the JIT when false). SwitchName is
// a constant, so reading it here does not initialise the type.
AppContext.SetSwitch(SchedulingHook.SwitchName, true);

var root = new RootCommand("engine: a concurrent model of Linux page tables and page refcounts, and a systematic concurrency tester.");
root.Subcommands.Add(ClassicsCommand.Create());
root.Subcommands.Add(TestCommand.Create());
root.Subcommands.Add(ReplayCommand.Create());
return root.Parse(args).Invoke();
