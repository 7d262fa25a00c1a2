# nginx's build knows no CXXFLAGS: give our C++ objects their standard here,
# object by object (the pattern nginx-opentracing uses).
for twostep_src in $TWOSTEP_NGX_SRCS $TWOSTEP_CORE_SRCS; do
    twostep_dir=`dirname $twostep_src`
    twostep_obj="$NGX_OBJS/addon/`basename $twostep_dir`/`basename $twostep_src .cpp`.o"
    echo "$twostep_obj : CFLAGS += -std=c++17" >> $NGX_MAKEFILE
done
