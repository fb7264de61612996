using System.Text;

namespace Trd.Runtime.Tokenization;

/// <summary>
/// GPT-2's byte-to-character table (<c>bytes_to_unicode</c>), which byte-level BPE vocabularies are written in:
/// printable bytes ('!'–'~', '¡'–'¬', '®'–'ÿ') stand for themselves, the other 68 for U+0100 onwards in byte order
/// (space is 'Ġ', '\n' is 'Ċ').
/// </summary>
internal static class ByteLevelAlphabet
{
    static readonly char[] _byteToChar = BuildTable();
    static readonly Dictionary<char, byte> _charToByte =
        Enumerable.Range(0, 256).ToDictionary(b => _byteToChar[b], b => (byte)b);

    static char[] BuildTable()
    {
        var table = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            var printable = b is >= 0x21 and <= 0x7E or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            table[b] = (char)(printable ? b : next++);
        }
        return table;
    }

    /// <summary>The character that stands for <paramref name="b"/>.</summary>
    public static char ToChar(byte b) => _byteToChar[b];

    /// <summary>
    /// Appends the bytes a vocabulary entry stands for; false (nothing appended) if it has a character outside the
    /// table, which no byte-level entry has.
    /// </summary>
    public static bool TryAppendBytes(string token, List<byte> bytes)
    {
        var start = bytes.Count;
        foreach (var c in token)
        {
            if (!_charToByte.TryGetValue(c, out var b))
            {
                bytes.RemoveRange(start, bytes.Count - start);
                return false;
            }
            bytes.Add(b);
        }
        return true;
    }

    /// <summary>UTF-8 bytes to text; invalid sequences become U+FFFD, as Rust's <c>String::from_utf8_lossy</c>.</summary>
    public static string DecodeUtf8(List<byte> bytes) =>
        Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes));
}
