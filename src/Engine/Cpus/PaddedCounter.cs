using System.Runtime.InteropServices;

namespace Engine.Cpus;

/// <summary>
/// An int alone on its cache line (64 bytes of padding on each side), for a word one CPU writes on every access and
/// others only read: without the padding, neighbouring objects' words share the line and every write bounces it.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 192)]
internal sealed class PaddedCounter
{
    /// <summary>The counter. Access it through <c>Engine.Sync.Atomic</c> by <c>ref</c> (its only writer may read its own value plainly).</summary>
    [FieldOffset(64)]
    public int Value;
}
