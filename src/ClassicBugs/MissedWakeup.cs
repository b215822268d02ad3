using Engine.Sync;
using Engine.Systematic;

namespace ClassicBugs;

/// <summary>
/// A consumer sleeps until a producer's data is ready. The sleeper announces itself in <c>Sleeping</c> and waits for a
/// wake-up token; the producer publishes the data and hands a token to a sleeper it sees.
/// </summary>
public static class MissedWakeup
{
    /// <summary>
    /// The consumer checks the data first and announces itself after: a producer that publishes in between sees no
    /// sleeper and sends no token, and the consumer sleeps forever.
    /// </summary>
    [SystematicTest(ExpectBug = true)]
    public static void Buggy() => Run(static handshake =>
    {
        if (Atomic.Read(ref handshake.Ready) == 0)
        {
            Atomic.Write(ref handshake.Sleeping, 1);
            Wait.Until(handshake, static h => Atomic.Read(ref h.Token) != 0);
        }
    });

    /// <summary>
    /// The consumer announces itself first (a full barrier) and then checks the data: either it sees the data, or the
    /// producer's later check sees it sleeping and sends the token.
    /// </summary>
    [SystematicTest]
    public static void Correct() => Run(static handshake =>
    {
        Atomic.Exchange(ref handshake.Sleeping, 1);
        if (Atomic.Read(ref handshake.Ready) == 0)
        {
            Wait.Until(handshake, static h => Atomic.Read(ref h.Token) != 0);
        }
    });

    private static void Run(Action<Handshake> consume)
    {
        var handshake = new Handshake();
        var producer = ControlledThread.Start(() =>
        {
            Atomic.Exchange(ref handshake.Ready, 1);
            if (Atomic.Read(ref handshake.Sleeping) != 0)
            {
                Atomic.Write(ref handshake.Token, 1);
            }
        }, "producer");

        consume(handshake);
        producer.Join();
        Specification.Assert(Atomic.Read(ref handshake.Ready) == 1, "the consumer woke before the data was ready");
    }

    private sealed class Handshake
    {
        public int Ready;
        public int Sleeping;
        public int Token;
    }
}
