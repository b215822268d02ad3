namespace Engine.Memory;

/// <summary>
/// What an anonymous page's <c>mapping</c> points to (the kernel's <c>page-&gt;mapping</c> with
/// <c>PAGE_MAPPING_ANON</c>: a pointer whose type the memmap does not know). Declared here so the memmap depends on
/// nothing above it; <c>Engine.Mm.AnonVma</c> is the one implementation and the rmap code casts back to it.
/// </summary>
internal interface IAnonMapping;
