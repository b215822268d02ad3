using System.ComponentModel;
using System.Globalization;

namespace Engine.Benchmarks;

/// <summary>
/// Builds and runs the kernel references, <c>bench/native/page_fault1</c>, <c>page_fault2</c> and
/// <c>page_fault3</c>, through <c>bench/native/build.sh</c> (gcc -O2 -pthread). Every failure is reported as a
/// message rather than thrown, so the caller can carry on with the engine alone.
/// </summary>
public static class NativePageFault
{
    /// <summary>Exit status of build.sh when gcc is not installed.</summary>
    private const int CompilerMissing = 3;

    /// <summary>
    /// Builds the programs. Returns the directory that holds the binaries, or null with <paramref name="problem"/>
    /// saying why (no gcc, no bash, repository not found, compile error).
    /// </summary>
    public static string? Build(out string problem)
    {
        problem = "";
        var script = FindBuildScript();
        if (script is null)
        {
            problem = "bench/native/build.sh not found above the current directory or the program's directory";
            return null;
        }

        var (exitCode, output, error) = RunProcess("bash", [script], TimeSpan.FromMinutes(2));
        if (exitCode == CompilerMissing)
        {
            problem = "gcc is not installed: " + error.Trim();
            return null;
        }

        if (exitCode != 0)
        {
            problem = exitCode == -1 ? error : $"build.sh exited with {exitCode}: {error.Trim()}";
            return null;
        }

        var binaries = output.Trim().Split('\n').Select(line => line.Trim()).ToArray();
        var missing = binaries.FirstOrDefault(b => !File.Exists(b));
        if (missing is not null)
        {
            problem = $"build.sh reported '{missing}', which does not exist";
            return null;
        }

        return Path.GetDirectoryName(binaries[^1]);
    }

    /// <summary>
    /// Runs <paramref name="test"/>'s program from <paramref name="directory"/> with <paramref name="workers"/>
    /// threads, or processes when <paramref name="processes"/>, its file (for the file tests) in
    /// <paramref name="fileDirectory"/> (null: the program's default, /tmp), and returns what it printed, or null
    /// with <paramref name="problem"/> set.
    /// </summary>
    public static NativeRunResult? Run(string directory, PageFaultTest test, int workers, bool processes, TimeSpan warmup, TimeSpan duration, string? fileDirectory, out string problem)
    {
        ArgumentNullException.ThrowIfNull(test);
        problem = "";
        var binary = Path.Combine(directory, test.Name);
        var args = new List<string>
        {
            "-t", workers.ToString(CultureInfo.InvariantCulture),
            "-d", duration.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture),
            "-w", warmup.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture),
        };
        if (processes)
        {
            args.Add("--processes");
        }

        if (fileDirectory is not null)
        {
            args.Add("--dir");
            args.Add(fileDirectory);
        }

        var (exitCode, output, error) = RunProcess(binary, args, warmup + duration + TimeSpan.FromMinutes(1));
        if (exitCode != 0)
        {
            problem = $"{test.Name} exited with {exitCode}: {error.Trim()}";
            return null;
        }

        var rate = Field(output, "faults_per_sec=");
        if (rate is null)
        {
            problem = $"no faults_per_sec in {test.Name}'s output: '{output.Trim()}'";
            return null;
        }

        return new NativeRunResult(rate.Value, Field(output, "minflt_per_page="));
    }

    /// <summary>The number after <paramref name="key"/> in the result line, or null (absent, or "n/a").</summary>
    private static double? Field(string output, string key)
    {
        foreach (var field in output.Trim().Split(' '))
        {
            if (field.StartsWith(key, StringComparison.Ordinal)
                && double.TryParse(field.AsSpan(key.Length), NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
            {
                return value;
            }
        }

        return null;
    }

    private static string? FindBuildScript()
    {
        foreach (var origin in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(origin); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "bench", "native", "build.sh");
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        return null;
    }

    /// <summary>Runs a program to completion; exit code −1 (and the reason in the error text) when it cannot start or times out.</summary>
    private static (int ExitCode, string Output, string Error) RunProcess(string fileName, IEnumerable<string> arguments, TimeSpan timeout)
    {
        var info = new System.Diagnostics.ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        try
        {
            using var process = System.Diagnostics.Process.Start(info)
                ?? throw new InvalidOperationException($"{fileName} did not start");
            var output = process.StandardOutput.ReadToEndAsync();
            var error = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(timeout))
            {
                process.Kill(entireProcessTree: true);
                return (-1, "", $"{fileName} did not finish within {timeout.TotalSeconds:0} s and was killed");
            }

            return (process.ExitCode, output.Result, error.Result);
        }
        catch (Win32Exception e)
        {
            return (-1, "", $"cannot start {fileName}: {e.Message}");
        }
    }
}
