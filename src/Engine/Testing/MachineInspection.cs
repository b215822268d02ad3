namespace Engine.Testing;

/// <summary>A test surface: how a test or a zoo scenario gets a <see cref="MachineInspector"/> for a machine.</summary>
public static class MachineInspection
{
    /// <summary>
    /// A test surface: an inspector of <paramref name="machine"/>'s page tables (see <see cref="MachineInspector"/>
    /// for what it reads and when it may be called). Cheap: make one per scenario, or per call.
    /// </summary>
    public static MachineInspector Inspect(this Machine machine)
    {
        ArgumentNullException.ThrowIfNull(machine);
        return new MachineInspector(machine);
    }
}
