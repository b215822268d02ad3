using Engine.Sync;

namespace Engine.Systematic.Tests;

/// <summary>A quiescent scope: primitives inside it are not scheduling points, and the scope ends cleanly.</summary>
public sealed class QuiescentScopeTests
{
    [Fact]
    public void ReadsInsideAQuiescentScopeTakeNoSteps()
    {
        var cell = new int[1];
        void Body(bool quiet)
        {
            var other = ControlledThread.Start(() => Atomic.Write(ref cell[0], 1));
            other.Join();
            var sum = 0;
            using (quiet ? SchedulingHook.EnterQuiescent() : default)
            {
                for (var i = 0; i < 500; i++)
                {
                    sum += Atomic.Read(ref cell[0]);
                }
            }

            // After the scope, primitives are scheduling points again.
            Atomic.Write(ref cell[0], sum);
            Specification.Assert(Atomic.Read(ref cell[0]) == 500, "the reads saw the other thread's store");
        }

        var quiet = TestingEngine.Run(Configuration.Create().WithTestingIterations(1), () => Body(quiet: true));
        var loud = TestingEngine.Run(Configuration.Create().WithTestingIterations(1), () => Body(quiet: false));
        Assert.Equal(0, quiet.BugsFound);
        Assert.Equal(0, loud.BugsFound);
        Assert.True(quiet.MaxStepsInIteration < 20, $"{quiet.MaxStepsInIteration} steps with the scope");
        Assert.True(loud.MaxStepsInIteration > 500, $"{loud.MaxStepsInIteration} steps without it");
    }
}
