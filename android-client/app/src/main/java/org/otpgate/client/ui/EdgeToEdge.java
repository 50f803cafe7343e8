package org.otpgate.client.ui;

import android.app.Activity;
import android.graphics.Insets;
import android.os.Build;
import android.view.View;
import android.view.ViewGroup;
import android.view.WindowInsets;

/**
 * Android 15 draws every app targeting API 35 edge to edge: content would sit
 * under the status bar, the navigation bar, a display cutout and the keyboard.
 * Each screen's root view is padded by those insets on top of its own padding.
 */
final class EdgeToEdge {
    private EdgeToEdge() {}

    static void apply(Activity activity) {
        ViewGroup content = activity.findViewById(android.R.id.content);
        if (content == null || content.getChildCount() == 0) return;
        View root = content.getChildAt(0);
        final int left = root.getPaddingLeft();
        final int top = root.getPaddingTop();
        final int right = root.getPaddingRight();
        final int bottom = root.getPaddingBottom();
        // Before API 30 (no WindowInsets.Type) Android does not draw apps edge to edge unless they ask.
        if (Build.VERSION.SDK_INT < Build.VERSION_CODES.R) return;
        root.setOnApplyWindowInsetsListener((view, insets) -> {
            Insets bars = insets.getInsets(WindowInsets.Type.systemBars() | WindowInsets.Type.displayCutout() | WindowInsets.Type.ime());
            view.setPadding(left + bars.left, top + bars.top, right + bars.right, bottom + bars.bottom);
            return insets;
        });
        root.requestApplyInsets();
    }
}
