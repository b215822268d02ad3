namespace Engine.Tests.Machine;

/// <summary>
/// The machine on real threads: each CPU thread owns words in a shared process and checks every value it reads,
/// while it and the others fault, madvise and remap. A short run of what <c>engine stress</c> will do at length.
/// </summary>
public sealed class RealThreadStressTests
{
    private const ulong Page = 4096;

    [Theory]
    [InlineData(PteLayout.Native64)]
    [InlineData(PteLayout.SplitPae)]
    public void CpusSharingAProcessAlwaysReadWhatTheyWrote(PteLayout layout)
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 4096, PteLayout = layout });
        var initial = machine.FreeFrames;
        var process = machine.CreateProcess();
        const int PagesPerCpu = 64;
        var region = process.Mmap(2 * PagesPerCpu * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        var errors = new string?[2];
        var threads = Enumerable.Range(0, 2).Select(id => new Thread(() =>
        {
            try
            {
                var cpu = machine.Cpus[id];
                var random = new Random(id);
                var mine = region + ((ulong)id * PagesPerCpu * Page);
                var expected = new ulong[PagesPerCpu];
                for (var step = 0; step < 60_000; step++)
                {
                    var page = random.Next(PagesPerCpu);
                    var address = mine + ((ulong)page * Page) + ((ulong)id * 8);
                    switch (random.Next(20))
                    {
                        case 0:
                            process.MadviseDontNeed(mine + ((ulong)page * Page), Page);
                            expected[page] = 0;
                            break;
                        case 1:
                            // Map, touch and unmap a private scratch region: page tables come and go.
                            var scratch = process.Mmap(4 * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
                            cpu.Write(process, scratch + Page, (ulong)step);
                            if (cpu.Read(process, scratch + Page) != (ulong)step)
                            {
                                throw new InvalidOperationException("scratch value lost");
                            }

                            process.Munmap(scratch, 4 * Page);
                            break;
                        case < 10:
                            var value = ((ulong)id << 56) | (uint)step;
                            cpu.Write(process, address, value);
                            expected[page] = value;
                            break;
                        default:
                            var read = cpu.Read(process, address);
                            if (read != expected[page])
                            {
                                throw new InvalidOperationException($"CPU {id} read 0x{read:x} at 0x{address:x}, expected 0x{expected[page]:x}");
                            }

                            break;
                    }
                }
            }
            catch (Exception e)
            {
                errors[id] = e.ToString();
            }
        })).ToArray();

        foreach (var thread in threads)
        {
            thread.Start();
        }

        foreach (var thread in threads)
        {
            Assert.True(thread.Join(TimeSpan.FromSeconds(60)), "a CPU thread hung");
        }

        Assert.Null(errors[0]);
        Assert.Null(errors[1]);
        machine.CheckInvariants();
        Assert.True(machine.Stats.TlbShootdowns > 0);
        process.Dispose();
        machine.CheckInvariants();
        Assert.Equal(initial, machine.FreeFrames);
    }
}
