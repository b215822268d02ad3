using Engine.Cli;
using Engine.Cli.Stress;
using Engine.Sync;

// The scheduling hook must be switched on before any Engine.Sync primitive is touched: SchedulingHook.IsEnabled is
// a static readonly field, fixed when the type is first used (and folded away by the JIT when false). SwitchName is
// a constant, so reading it here does not initialise the type. Only the commands that run the systematic tester
// switch it on, and `stress` when it perturbs the threads (a targeted mix, or --perturb on); plain `stress` runs the
// engine at full speed, with every hook check compiled away.
if (args.Length > 0 && (args[0] is "test" or "replay" or "classics" or "zoo" or "mapcount" or "compare" || (args[0] is "stress" && StressMixes.WantsPerturbation(args))))
{
    AppContext.SetSwitch(SchedulingHook.SwitchName, true);
}
return EngineCommandLine.Run(args);
