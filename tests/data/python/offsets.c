/* SPDX-License-Identifier: Apache-2.0 */
/*
 * python_offsets.c - prints the CPython structure offsets unwind/python.c
 * tabulates, computed with offsetof() against one version's own headers
 * (internal ones included). Build it against each version, e.g. pyenv's:
 *   inc=$(echo ~/.pyenv/versions/3.12.1/include/python3*)
 *   gcc -I$inc -I$inc/internal -o /tmp/off tests/data/python/offsets.c && /tmp/off
 * and compare with the table (the offsets hold for x86-64).
 */
#define Py_BUILD_CORE 1
#include <Python.h>
#include <stddef.h>
#include <stdio.h>
#if PY_MINOR_VERSION >= 11
#include <internal/pycore_frame.h>
#endif
#if __has_include(<internal/pycore_runtime.h>)
#include <internal/pycore_runtime.h>
#endif
#if __has_include(<internal/pycore_interp.h>)
#include <internal/pycore_interp.h>
#else
#include <internal/pycore_pystate.h>
#endif
#if PY_MINOR_VERSION <= 10
#include <frameobject.h>
#endif
#define P(name, expr) printf("%-22s %zu\n", name, (size_t)(expr))
int main(void)
{
    printf("version 3.%d\n", PY_MINOR_VERSION);
    P("runtime_interp_head", offsetof(_PyRuntimeState, interpreters.head));
#if PY_MINOR_VERSION >= 11
    P("interp_tstate_head", offsetof(PyInterpreterState, threads.head));
#else
    P("interp_tstate_head", offsetof(PyInterpreterState, tstate_head));
#endif
    P("interp_next", offsetof(PyInterpreterState, next));
    P("tstate_next", offsetof(PyThreadState, next));
#if PY_MINOR_VERSION >= 11
    P("tstate_native_tid", offsetof(PyThreadState, native_thread_id));
    P("tstate_thread_id", offsetof(PyThreadState, thread_id));
#else
    P("tstate_native_tid", 0xffff);
    P("tstate_thread_id", offsetof(PyThreadState, thread_id));
#endif
#if PY_MINOR_VERSION >= 13
    P("tstate_frame", offsetof(PyThreadState, current_frame));
    P("cframe_current", 0xffff);
#elif PY_MINOR_VERSION >= 11
    P("tstate_frame", offsetof(PyThreadState, cframe));
    P("cframe_current", offsetof(_PyCFrame, current_frame));
#else
    P("tstate_frame", offsetof(PyThreadState, frame));
    P("cframe_current", 0xffff);
#endif
#if PY_MINOR_VERSION >= 13
    P("frame_code", offsetof(_PyInterpreterFrame, f_executable));
    P("frame_back", offsetof(_PyInterpreterFrame, previous));
    P("frame_instr", offsetof(_PyInterpreterFrame, instr_ptr));
    P("frame_owner", offsetof(_PyInterpreterFrame, owner));
#elif PY_MINOR_VERSION == 12
    P("frame_code", offsetof(_PyInterpreterFrame, f_code));
    P("frame_back", offsetof(_PyInterpreterFrame, previous));
    P("frame_instr", offsetof(_PyInterpreterFrame, prev_instr));
    P("frame_owner", offsetof(_PyInterpreterFrame, owner));
#elif PY_MINOR_VERSION == 11
    P("frame_code", offsetof(_PyInterpreterFrame, f_code));
    P("frame_back", offsetof(_PyInterpreterFrame, previous));
    P("frame_instr", offsetof(_PyInterpreterFrame, prev_instr));
    P("frame_owner", offsetof(_PyInterpreterFrame, is_entry));
#else
    P("frame_code", offsetof(PyFrameObject, f_code));
    P("frame_back", offsetof(PyFrameObject, f_back));
    P("frame_instr", offsetof(PyFrameObject, f_lasti));
    P("frame_owner", 0xffff);
#endif
#if PY_MINOR_VERSION >= 11
    P("code_adaptive", offsetof(PyCodeObject, co_code_adaptive));
    P("code_qualname", offsetof(PyCodeObject, co_qualname));
#else
    P("code_adaptive", 0);
    P("code_qualname", 0xffff);
#endif
    P("code_name", offsetof(PyCodeObject, co_name));
    P("code_filename", offsetof(PyCodeObject, co_filename));
    P("code_firstlineno", offsetof(PyCodeObject, co_firstlineno));
#if PY_MINOR_VERSION >= 10
    P("code_linetable", offsetof(PyCodeObject, co_linetable));
#else
    P("code_linetable", offsetof(PyCodeObject, co_lnotab));
#endif
    P("unicode_ascii_data", sizeof(PyASCIIObject));
    P("unicode_compact_data", sizeof(PyCompactUnicodeObject));
    P("unicode_state", offsetof(PyASCIIObject, state));
    P("unicode_length", offsetof(PyASCIIObject, length));
    P("bytes_size", offsetof(PyVarObject, ob_size));
    P("bytes_data", offsetof(PyBytesObject, ob_sval));
    P("object_type", offsetof(PyObject, ob_type));
    return 0;
}
