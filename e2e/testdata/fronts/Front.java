// Front.java: a Java thread-pool front service for the e2e concurrency
// tests: the JDK's com.sun.net.httpserver with a fixed executor. GET
// /front/{id} calls WEFT_E2E_BACK/items/{id}.1 and then /items/{id}.2
// (HttpURLConnection, keep-alive) on the pool thread serving the request
// and answers 200 "ok" when both answered 200. Prints its port alone on
// the first stdout line. Run with `java Front.java` (JDK 11+).
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.InetSocketAddress;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Executors;

public class Front {
    static String back = System.getenv("WEFT_E2E_BACK");

    static int get(String path) throws Exception {
        HttpURLConnection c = (HttpURLConnection) new URL(back + path).openConnection();
        int status = c.getResponseCode();
        try (InputStream in = c.getInputStream()) {
            in.readAllBytes(); // fully read: the connection goes back to the keep-alive cache
        }
        return status;
    }

    static void handle(HttpExchange ex) throws java.io.IOException {
        String path = ex.getRequestURI().getPath();
        int code = 404;
        byte[] body = new byte[0];
        if (path.startsWith("/front/")) {
            String id = path.substring("/front/".length());
            try {
                boolean ok = get("/items/" + id + ".1") == 200 && get("/items/" + id + ".2") == 200;
                code = ok ? 200 : 502;
                body = (ok ? "ok\n" : "bad gateway\n").getBytes(StandardCharsets.UTF_8);
            } catch (Exception e) {
                code = 502;
                body = e.toString().getBytes(StandardCharsets.UTF_8);
            }
        }
        ex.sendResponseHeaders(code, body.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(body);
        }
    }

    public static void main(String[] args) throws Exception {
        System.setProperty("http.maxConnections", "256");
        HttpServer srv = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 256);
        srv.createContext("/", Front::handle);
        srv.setExecutor(Executors.newFixedThreadPool(16));
        srv.start();
        System.out.println(srv.getAddress().getPort());
        System.out.flush();
    }
}
