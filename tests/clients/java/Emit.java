// Writes a few events with Logback and logstash-logback-encoder's LogstashEncoder (java/logback.xml:
// the encoder's defaults plus an app_name custom field), MDC requestId and traceId set as a servlet
// filter would; tests/record/test_dialects.py compiles and runs it and reads its stdout.
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;

public class Emit {
    public static void main(String[] args) {
        Logger log = LoggerFactory.getLogger("com.example.checkout.OrderService");
        MDC.put("requestId", "req-logback-1");
        MDC.put("traceId", "5759e988bd862e3fe1be46a994272793");
        log.info("order {} placed", 42);
        log.warn("slow payment");
        try {
            throw new IllegalStateException("card declined");
        } catch (IllegalStateException e) {
            log.error("payment failed", e);
        }
        MDC.clear();
        log.debug("cache miss");
        log.trace("not written: the root level is DEBUG");
    }
}
