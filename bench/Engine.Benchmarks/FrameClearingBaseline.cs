using System.Diagnostics;

namespace Engine.Benchmarks;

/// <summary>
/// The memory traffic of page_fault1 without the engine: each thread owns a 128 MiB buffer of 4 KiB "frames" and
/// loops over it as the engine does over a region: clear a frame and store one word in it (what an anonymous fault
/// costs in memory: <c>clear_page</c> plus the write), then, when poisoning is on, fill every frame of the buffer
/// with the poison pattern (what munmap costs with <c>PoisonFreedFrames</c>). The buffer is far larger than the
/// caches, so each frame is cold when it is cleared, as the engine's frames are. Frames/s here is a ceiling for the
/// engine's faults/s on this machine.
/// </summary>
public static class FrameClearingBaseline
{
    private const int WordsPerFrame = 512;
    private const int FramesPerBuffer = (int)(EnginePageFault.RegionBytes / EnginePageFault.PageBytes);
    private const int Stride = 16;

    /// <summary>Frames cleared per second over <paramref name="duration"/> by <paramref name="threads"/> threads, after <paramref name="warmup"/>.</summary>
    public static double Measure(int threads, bool poison, TimeSpan warmup, TimeSpan duration)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(threads);
        var counts = new long[threads * Stride];
        var stop = new int[1];
        var workers = new Thread[threads];
        for (var i = 0; i < threads; i++)
        {
            var slot = i * Stride;
            workers[i] = new Thread(() => Work(counts, slot, stop, poison)) { IsBackground = true, Name = $"baseline {i}" };
            workers[i].Start();
        }

        Thread.Sleep(warmup);
        var before = Sum(counts, threads);
        var start = Stopwatch.GetTimestamp();
        Thread.Sleep(duration);
        var after = Sum(counts, threads);
        var elapsed = Stopwatch.GetElapsedTime(start);
        Volatile.Write(ref stop[0], 1);
        foreach (var worker in workers)
        {
            worker.Join();
        }

        return (after - before) / elapsed.TotalSeconds;
    }

    private static long Sum(long[] counts, int threads)
    {
        long total = 0;
        for (var i = 0; i < threads; i++)
        {
            total += Volatile.Read(ref counts[i * Stride]);
        }

        return total;
    }

    private static void Work(long[] counts, int slot, int[] stop, bool poison)
    {
        var buffer = GC.AllocateUninitializedArray<ulong>(FramesPerBuffer * WordsPerFrame);
        buffer.AsSpan().Fill(0x6B6B_6B6B_6B6B_6B6BUL);
        long frames = 0;
        while (Volatile.Read(ref stop[0]) == 0)
        {
            for (var f = 0; f < FramesPerBuffer; f++)
            {
                var frame = buffer.AsSpan(f * WordsPerFrame, WordsPerFrame);
                frame.Clear();
                Volatile.Write(ref frame[0], (ulong)f);
                Volatile.Write(ref counts[slot], ++frames);
            }

            if (poison)
            {
                for (var f = 0; f < FramesPerBuffer; f++)
                {
                    buffer.AsSpan(f * WordsPerFrame, WordsPerFrame).Fill(0x6B6B_6B6B_6B6B_6B6BUL);
                }
            }
        }
    }
}
