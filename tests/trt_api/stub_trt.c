/* Stand-in for libnvinfer / libnvinfer_plugin / libnvonnxparser: the C entry points the TensorRT
 * Python bindings link against, each returning NULL / 0. With these on LD_LIBRARY_PATH,
 * `import tensorrt` succeeds on a CPU machine, so the bindings' classes, methods, enums and flags can
 * be inspected. Nothing can be built or run with them: every factory returns NULL. */
#include <stddef.h>
void *createInferBuilder_INTERNAL(void *logger, int version) { return NULL; }
void *createInferRuntime_INTERNAL(void *logger, int version) { return NULL; }
void *createInferRefitter_INTERNAL(void *engine, void *logger, int version) { return NULL; }
void *getPluginRegistry(void) { return NULL; }
void *getBuilderPluginRegistry(int capability) { return NULL; }
int getInferLibVersion(void) { return 0; }
int initLibNvInferPlugins(void *logger, const char *ns) { return 0; }
void *createNvOnnxParser_INTERNAL(void *network, void *logger, int version) { return NULL; }
void *createNvOnnxParserRefitter_INTERNAL(void *refitter, void *logger, int version) { return NULL; }
int getNvOnnxParserVersion(void) { return 0; }
