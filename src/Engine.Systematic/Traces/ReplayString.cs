using System.Buffers.Text;
using System.IO.Compression;

namespace Engine.Systematic;

/// <summary>
/// The one-line replay string printed with every bug: <c>sys1:</c> followed by base64url of a deflated stream of
/// variable-length integers. The stream holds the settings that shape a replay (the step bound, whether a hang is a
/// bug) and every decision, with runs of the same thread collapsed: a schedule run is (thread·4+0, length), a boolean
/// is (value·4+1), an integer is (value·4+2, bound). Operations and locations are not in the string (the JSON trace
/// has them); replay checks the decisions, and reports the step at which the program stops matching them.
/// </summary>
public static class ReplayString
{
    private const string Prefix = "sys1:";

    /// <summary>
    /// The most bytes a replay string may inflate to: 64 MiB, millions of decisions at a few bytes each, far beyond any
    /// schedule the tester records in one iteration.
    /// </summary>
    private const int MaxDecodedBytes = 64 << 20;

    /// <summary>Encodes the decisions of <paramref name="steps"/>.</summary>
    public static string Encode(IReadOnlyList<TraceStep> steps, int maxSteps, bool hangIsBug)
    {
        ArgumentNullException.ThrowIfNull(steps);
        using var raw = new MemoryStream();
        WriteVarint(raw, (ulong)maxSteps);
        WriteVarint(raw, hangIsBug ? 1UL : 0UL);
        WriteVarint(raw, (ulong)steps.Count);
        for (var i = 0; i < steps.Count;)
        {
            var step = steps[i];
            switch (step.Kind)
            {
                case DecisionKind.Schedule:
                    var run = 1;
                    while (i + run < steps.Count && steps[i + run].Kind == DecisionKind.Schedule && steps[i + run].Thread == step.Thread)
                    {
                        run++;
                    }

                    WriteVarint(raw, ((ulong)step.Thread << 2) | 0);
                    WriteVarint(raw, (ulong)run);
                    i += run;
                    break;
                case DecisionKind.Boolean:
                    WriteVarint(raw, ((ulong)step.Value << 2) | 1);
                    i++;
                    break;
                default:
                    WriteVarint(raw, ((ulong)step.Value << 2) | 2);
                    WriteVarint(raw, (ulong)step.Bound);
                    i++;
                    break;
            }
        }

        using var packed = new MemoryStream();
        using (var deflate = new DeflateStream(packed, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            raw.Position = 0;
            raw.CopyTo(deflate);
        }

        return Prefix + Base64Url.EncodeToString(packed.ToArray());
    }

    /// <summary>Decodes a replay string into its settings and decisions. Throws <see cref="FormatException"/> on a bad string.</summary>
    public static (int MaxSteps, bool HangIsBug, IReadOnlyList<TraceStep> Decisions) Decode(string replay)
    {
        ArgumentNullException.ThrowIfNull(replay);
        replay = replay.Trim();
        if (!replay.StartsWith(Prefix, StringComparison.Ordinal))
        {
            throw new FormatException($"A replay string starts with '{Prefix}'.");
        }

        try
        {
            var packed = Base64Url.DecodeFromChars(replay.AsSpan(Prefix.Length));
            using var raw = new MemoryStream();
            using (var inflate = new DeflateStream(new MemoryStream(packed), CompressionMode.Decompress))
            {
                // A string pasted by a person may be anything: inflate no more than any schedule could need.
                var buffer = new byte[81920];
                int read;
                while ((read = inflate.Read(buffer, 0, buffer.Length)) > 0)
                {
                    if (raw.Length + read > MaxDecodedBytes)
                    {
                        throw new FormatException($"Replay string inflates past {MaxDecodedBytes:N0} bytes.");
                    }

                    raw.Write(buffer, 0, read);
                }
            }

            raw.Position = 0;
            var maxSteps = checked((int)ReadVarint(raw));
            if (maxSteps <= 0)
            {
                throw new FormatException("Replay string has no step bound.");
            }

            var hangIsBug = ReadVarint(raw) != 0;
            var count = checked((int)ReadVarint(raw));

            // The count comes from the string: trust it only as far as the decisions it announces arrive.
            var steps = new List<TraceStep>(Math.Min(count, 4096));
            var scheduled = 0;
            while (steps.Count < count)
            {
                var tag = ReadVarint(raw);
                var value = checked((int)(tag >> 2));
                switch (tag & 3)
                {
                    case 0:
                        var run = checked((int)ReadVarint(raw));

                        // Every scheduling decision is a step, and an iteration takes at most maxSteps of them; a run
                        // past that, or past the count, is corruption (and would otherwise fill memory).
                        if (run <= 0 || run > count - steps.Count || run > maxSteps - scheduled)
                        {
                            throw new FormatException("Replay string has a run of decisions longer than its schedule.");
                        }

                        scheduled += run;
                        for (var r = 0; r < run; r++)
                        {
                            steps.Add(new TraceStep(steps.Count, DecisionKind.Schedule, value, value, 0, default, "", 0, -1, 0, false));
                        }

                        break;
                    case 1:
                        steps.Add(new TraceStep(steps.Count, DecisionKind.Boolean, -1, value, 2, Engine.Sync.OperationKind.RandomChoice, "", 0, -1, 0, false));
                        break;
                    case 2:
                        var bound = checked((int)ReadVarint(raw));
                        steps.Add(new TraceStep(steps.Count, DecisionKind.Integer, -1, value, bound, Engine.Sync.OperationKind.RandomChoice, "", 0, -1, 0, false));
                        break;
                    default:
                        throw new FormatException("Unknown decision tag in replay string.");
                }
            }

            if (steps.Count != count)
            {
                throw new FormatException("Replay string decision count does not match its runs.");
            }

            if (raw.Position != raw.Length)
            {
                throw new FormatException("Replay string has data after its last decision.");
            }

            return (maxSteps, hangIsBug, steps);
        }
        catch (Exception e) when (e is InvalidDataException or OverflowException or EndOfStreamException or ArgumentException or FormatException)
        {
            throw new FormatException($"Malformed replay string: {e.Message}", e);
        }
    }

    private static void WriteVarint(Stream stream, ulong value)
    {
        while (value >= 0x80)
        {
            stream.WriteByte((byte)(value | 0x80));
            value >>= 7;
        }

        stream.WriteByte((byte)value);
    }

    private static ulong ReadVarint(Stream stream)
    {
        ulong result = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            var b = stream.ReadByte();
            if (b < 0)
            {
                throw new EndOfStreamException("Replay string ends inside a number.");
            }

            result |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return result;
            }
        }

        throw new FormatException("Replay string number is too long.");
    }
}
