using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Memory;

/// <summary>
/// The machine's physical memory: one contiguous array of 4 KiB frames, addressed by pfn from
/// <see cref="BasePfn"/>. Page tables live in these frames too, so a PTE read is an atomic read of a pool word.
/// </summary>
internal sealed class PhysicalMemory
{
    /// <summary>log2 of the page size.</summary>
    public const int PageShift = 12;

    /// <summary>Bytes per frame.</summary>
    public const int PageSize = 1 << PageShift;

    /// <summary>64-bit words per frame (and entries per page table).</summary>
    public const int WordsPerFrame = PageSize / sizeof(ulong);

    /// <summary>
    /// What a freed frame is filled with: the slab allocator's free-poison byte (0x6b) in every byte, so a stale
    /// reader sees an unmistakable value rather than the data of the next owner.
    /// </summary>
    public const ulong PoisonWord = 0x6B6B_6B6B_6B6B_6B6BUL;

    private readonly ulong[] _words;

    public PhysicalMemory(long basePfn, int frames)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(frames);
        ArgumentOutOfRangeException.ThrowIfNegative(basePfn);
        BasePfn = basePfn;
        Frames = frames;
        _words = GC.AllocateUninitializedArray<ulong>(checked(frames * WordsPerFrame));
        _words.AsSpan().Fill(PoisonWord);
    }

    /// <summary>The pfn of the first frame.</summary>
    public long BasePfn { get; }

    /// <summary>Number of frames.</summary>
    public int Frames { get; }

    /// <summary>Word <paramref name="index"/> of frame <paramref name="pfn"/>, for atomic access.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref ulong Word(long pfn, int index)
    {
        Debug.Assert((ulong)(pfn - BasePfn) < (ulong)Frames && (uint)index < WordsPerFrame, "frame word out of range");
        return ref _words[((pfn - BasePfn) << (PageShift - 3)) + index];
    }

    /// <summary>The words of frame <paramref name="pfn"/>, for bulk work on a frame no other thread can reach.</summary>
    public Span<ulong> Frame(long pfn) => _words.AsSpan(checked((int)((pfn - BasePfn) << (PageShift - 3))), WordsPerFrame);

    /// <summary>Clears a frame that is not yet published (<c>clear_page</c>).</summary>
    public void Zero(long pfn) => Frame(pfn).Clear();

    /// <summary>
    /// Fills a frame that was just freed with <see cref="PoisonWord"/>. On x86 with non-temporal stores: a freed
    /// frame is rarely read again before its next owner clears it, so the stores go around the caches instead of
    /// first reading 4 KiB of memory in to overwrite it (they do not evict a hotter working set either). They are
    /// weakly ordered: call <see cref="FencePoison"/> before the frame can reach another owner.
    /// </summary>
    public unsafe void Poison(long pfn)
    {
        if (!Sse2.X64.IsSupported)
        {
            Frame(pfn).Fill(PoisonWord);
            return;
        }

        fixed (ulong* frame = &Word(pfn, 0))
        {
            // Frames are 4 KiB apart, so every frame has the same misalignment to 32 bytes: scalar stores up to the
            // first aligned word, 32-byte stores for the bulk, scalar stores for what is left.
            var word = (int)((32 - ((nuint)frame & 31)) & 31) / sizeof(ulong);
            for (var i = 0; i < word; i++)
            {
                Sse2.X64.StoreNonTemporal(frame + i, PoisonWord);
            }

            if (Avx.IsSupported)
            {
                var poison = Vector256.Create(PoisonWord);
                for (; word + 4 <= WordsPerFrame; word += 4)
                {
                    Avx.StoreAlignedNonTemporal(frame + word, poison);
                }
            }

            for (; word < WordsPerFrame; word++)
            {
                Sse2.X64.StoreNonTemporal(frame + word, PoisonWord);
            }
        }
    }

    /// <summary>
    /// Orders the non-temporal stores of earlier <see cref="Poison"/> calls before any later store (<c>sfence</c>),
    /// so a frame's next owner can never have its own stores overtaken by the poison.
    /// </summary>
    public static void FencePoison()
    {
        if (Sse.IsSupported)
        {
            Sse.StoreFence();
        }
    }

    /// <summary>True when every word of the frame still holds the poison.</summary>
    public bool IsPoisoned(long pfn) => !Frame(pfn).ContainsAnyExcept(PoisonWord);
}
