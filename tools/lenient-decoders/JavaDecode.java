// OpenJDK's URLDecoder as the reference for warden's model of it (`inputs::java_reading`,
// held to it by the test `java_reading_is_openjdk_s`). Run as a single-file program:
//
//     java tools/lenient-decoders/JavaDecode.java < cases
//
// Each input line is a string's UTF-8 in hex; each output line is `T` where the decoder throws,
// else the decoded string's UTF-8 in hex, with each U+FFFD (a run of bytes that is not UTF-8)
// written as `x`.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;

public class JavaDecode {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.US_ASCII));
        StringBuilder out = new StringBuilder();
        String line;
        while ((line = in.readLine()) != null) {
            byte[] b = new byte[line.length() / 2];
            for (int i = 0; i < b.length; i++) {
                b[i] = (byte) Integer.parseInt(line.substring(2 * i, 2 * i + 2), 16);
            }
            String s = new String(b, StandardCharsets.UTF_8);
            String d;
            try {
                d = URLDecoder.decode(s, StandardCharsets.UTF_8).replace('\uFFFD', 'x');
            } catch (IllegalArgumentException e) {
                out.append("T\n");
                continue;
            }
            for (byte c : d.getBytes(StandardCharsets.UTF_8)) {
                out.append(String.format("%02x", c & 0xff));
            }
            out.append('\n');
        }
        System.out.print(out);
    }
}
