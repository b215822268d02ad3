using System.ComponentModel;
using System.Globalization;

namespace Engine.Benchmarks;

/// <summary>
/// Builds and runs the kernel reference, <c>bench/native/page_fault1.c</c>, through <c>bench/native/build.sh</c>
/// (gcc -O2 -pthread). Every failure is reported as a message rather than thrown, so the caller can carry on with the
/// engine alone.
/// </summary>
public static class NativePageFault1
{
    /// <summary>Exit status of build.sh when gcc is not installed.</summary>
    private const int CompilerMissing = 3;

    /// <summary>
    /// Builds the program. Returns the binary's path, or null with <paramref name="problem"/> saying why (no gcc, no
    /// bash, repository not found, compile error).
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

        var binary = output.Trim().Split('\n')[^1].Trim();
        if (!File.Exists(binary))
        {
            problem = $"build.sh reported '{binary}', which does not exist";
            return null;
        }

        return binary;
    }

    /// <summary>
    /// Runs the program with <paramref name="workers"/> threads, or processes when <paramref name="processes"/>, and
    /// returns its faults_per_sec, or null with <paramref name="problem"/> set.
    /// </summary>
    public static double? Run(string binary, int workers, bool processes, TimeSpan warmup, TimeSpan duration, out string problem)
    {
        problem = "";
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

        var (exitCode, output, error) = RunProcess(binary, args, warmup + duration + TimeSpan.FromMinutes(1));
        if (exitCode != 0)
        {
            problem = $"page_fault1 exited with {exitCode}: {error.Trim()}";
            return null;
        }

        foreach (var field in output.Trim().Split(' '))
        {
            const string key = "faults_per_sec=";
            if (field.StartsWith(key, StringComparison.Ordinal)
                && double.TryParse(field.AsSpan(key.Length), NumberStyles.Float, CultureInfo.InvariantCulture, out var rate))
            {
                return rate;
            }
        }

        problem = $"no faults_per_sec in page_fault1's output: '{output.Trim()}'";
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
