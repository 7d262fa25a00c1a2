# nginx's build knows no CXXFLAGS: give our C++ objects their standard here,
# object by object (the pattern nginx-opentracing uses).
for twostep_src in $TWOSTEP_NGX_SRCS $TWOSTEP_CORE_SRCS; do
    twostep_dir=`dirname $twostep_src`
    twostep_obj="$NGX_OBJS/addon/`basename $twostep_dir`/`basename $twostep_src .cpp`.o"
    echo "$twostep_obj : CFLAGS += -std=c++17" >> $NGX_MAKEFILE
done

# nginx's configure knows no generated sources: the rule that embeds the
# pages' templates, stylesheet and translations, for the object rule
# auto/module wrote for $TWOSTEP_PAGES_SRC. The wildcard is make's, so a
# new template is picked up without configuring again.
cat << END >> $NGX_MAKEFILE

$TWOSTEP_PAGES_SRC: $ngx_addon_dir/scripts/embed-pages \$(wildcard $ngx_addon_dir/src/core/pages/* $ngx_addon_dir/src/core/pages/lang/*)
	mkdir -p `dirname $TWOSTEP_PAGES_SRC`
	$ngx_addon_dir/scripts/embed-pages $ngx_addon_dir/src/core/pages >\$@.new && mv -f \$@.new \$@
END
