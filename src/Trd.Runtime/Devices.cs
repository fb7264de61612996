using TorchSharp;
using static TorchSharp.torch;

namespace Trd.Runtime;

/// <summary>
/// The one place the runtime chooses a device. Everything else takes a <see cref="Device"/> from here or
/// from its caller. <c>TRD_DEVICE</c> (<c>cpu</c>, <c>cuda</c>, <c>cuda:1</c>, …) overrides the default,
/// which is CUDA when TorchSharp sees a GPU (a <c>-p:TorchBackend=cuda</c> build) and the CPU otherwise.
/// </summary>
public static class Devices
{
    /// <summary>The default device, resolved once.</summary>
    public static Device Default => _default.Value;

    static readonly Lazy<Device> _default = new(() => Parse(Environment.GetEnvironmentVariable("TRD_DEVICE")));

    /// <summary>What is wrong with a device name, or null: "cpu", "cuda" and "cuda:N" are what a build can run on.</summary>
    public static string? NameProblem(string name) =>
        System.Text.RegularExpressions.Regex.IsMatch(name.Trim(), @"^(cpu|cuda(:\d{1,3})?)$", System.Text.RegularExpressions.RegexOptions.IgnoreCase) ? null
            : $"device '{(name.Length > 40 ? name[..40] + "…" : name)}': expected cpu, cuda or cuda:N";

    /// <summary>
    /// A device from its name; null or empty picks CUDA if available, else CPU. A CUDA name on a machine
    /// without CUDA is an error naming the cause, not a silent fall-back.
    /// </summary>
    public static Device Parse(string? name)
    {
        if (string.IsNullOrWhiteSpace(name))
            return cuda.is_available() ? CUDA : CPU;
        // Only what this build can run on: "cpu", "cuda" or "cuda:N" (TorchSharp would take "tpu" and fail later, or say
        // "Requested value 'TPU' was not found").
        var trimmed = name.Trim();
        if (NameProblem(trimmed) is { } problem) throw new ArgumentException(problem);
        var device = new Device(trimmed.ToLowerInvariant());
        if (device.type == DeviceType.CUDA && !cuda.is_available())
            throw new ArgumentException(
                $"device '{name}' was asked for (TRD_DEVICE or argument), but TorchSharp sees no CUDA device: build with -p:TorchBackend=cuda on a machine with a GPU, or use cpu.");
        return device;
    }

    /// <summary>Whether bfloat16 matrix work is worthwhile on the device (CUDA); on CPU fp32 is the default.</summary>
    public static bool PrefersBFloat16(Device device) => device.type == DeviceType.CUDA;

    /// <summary>A one-line description for run logs: TorchSharp and libtorch versions, device, threads.</summary>
    public static string Describe(Device device) =>
        $"TorchSharp {typeof(torch).Assembly.GetName().Version}, libtorch {__version__}, device {device}, intra-op threads {get_num_threads()}";
}
